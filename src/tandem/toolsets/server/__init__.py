"""The ``server`` toolset: what this Tandem is serving and how it is doing."""

from __future__ import annotations

import platform
from typing import Any

from pydantic import BaseModel, Field

from tandem.core import CallContext, Toolset

toolset = Toolset("server", description="Information about this Tandem server: version, toolsets, health.")


class ServerInfo(BaseModel):
    name: str = "tandem"
    version: str
    python: str
    workspace: str = Field(description="The workspace root every path is confined to.")
    toolsets: dict[str, int] = Field(description="Served toolsets and how many tools each has.")
    transport: str = Field(description="The transport carrying this call.")
    session_id: str | None


class Health(BaseModel):
    status: str
    uptime_s: float
    sessions: int
    sessions_by_transport: dict[str, int]
    tasks: int = Field(description="Tasks the server still holds: running, waiting for input, or finished.")
    requests: dict[str, dict[str, Any]] = Field(description="Per-method counts and latency (ms) since start.")


@toolset.tool(read_only=True, title="Server info")
def server_info(ctx: CallContext) -> ServerInfo:
    """Describe this Tandem server: version, Python, workspace root, served toolsets and the current transport."""
    status = ctx.server_status()
    return ServerInfo(
        version=status.get("version", "unknown"),
        python=platform.python_version(),
        workspace=str(ctx.workspace),
        toolsets=status.get("toolsets", {}),
        transport=ctx.transport,
        session_id=ctx.session_id,
    )


@toolset.tool(read_only=True, title="Server health")
def server_health(ctx: CallContext) -> Health:
    """Report the server's health: uptime, open sessions per transport, and per-method request timings."""
    status = ctx.server_status()
    return Health(
        status=status.get("status", "ok"),
        uptime_s=status.get("uptime_s", 0.0),
        sessions=status.get("sessions", 0),
        sessions_by_transport=status.get("sessions_by_transport", {}),
        tasks=status.get("tasks", 0),
        requests=status.get("requests", {}),
    )
