"""Settings of the gateway toolset (the ``[gateway]`` table): the upstream MCP servers mounted under a
namespace. In the core so the one ``Settings`` object can hold them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
