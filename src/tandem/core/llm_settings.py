"""Settings of ``tandem.llm`` (the ``[llm]`` table): the OpenAI-compatible endpoint asked when the client cannot
sample. In the core so the one ``Settings`` object can hold them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LlmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
