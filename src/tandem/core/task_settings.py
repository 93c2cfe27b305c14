"""Settings of the tasks toolset (the ``[tasks]`` table of ``tandem.toml``): which just recipes may run, and
their limits. In the core so the one ``Settings`` object can hold them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TaskSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
