"""Settings of the sdlc toolset (the ``[sdlc]`` table): how strictly the development loop and the policy rules
apply. In the core so the one ``Settings`` object can hold them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SdlcSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
