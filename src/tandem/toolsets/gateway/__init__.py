"""The ``gateway`` toolset: upstream MCP servers mounted under a namespace, and ``delegate``.

Each upstream (a stdio child process the gateway owns, or a Streamable HTTP endpoint) has its tools served here as
``<upstream>.<tool>`` with their own schemas, descriptions and hints; calling one forwards the call, its progress
and its result. They are registry tools like any other, so hooks on them run (``@toolset.after("coder.x")``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from tandem.core import CallContext, InvalidArguments, ToolError, ToolResult, Toolset
from tandem.toolsets.gateway.service import Gateway, gateway_service

toolset = Toolset("gateway", description="Upstream MCP servers (a coder) mounted under their namespace.")
toolset.service(gateway_service)


def _gateway(ctx: CallContext) -> Gateway:
    gateway: Gateway = ctx.service("gateway")
    return gateway


@toolset.tool(open_world=True, destructive=True)
async def delegate(
    tool: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            description="The upstream tool: 'coder.ast_rewrite', or 'ast_rewrite' when one upstream has it.",
        ),
    ],
    ctx: CallContext,
    arguments: Annotated[
        dict[str, Any] | None, Field(description="Its arguments, as its own input schema describes them.")
    ] = None,
) -> ToolResult:
    """Call a tool of an upstream MCP server (the coder) by name and return its result as it gave it.

    The same as calling `coder.<tool>` directly, for clients that prefer one tool; the upstream's namespace may be
    left out when only one upstream has the tool. Guardrails on the tool apply as they do to a direct call.
    An unknown tool is answered with the list of tools the upstream has; an upstream that is down with why, and
    when it will be back (it is restarted by itself).
    """
    gateway = _gateway(ctx)
    found = gateway.resolve(tool)
    try:
        result: ToolResult = await gateway.registry.invoke(found, arguments or {}, ctx)
    except InvalidArguments as exc:
        raise ToolError(f"{exc} (see the input schema of {found.name} in tools/list)") from None
    return result


class UpstreamStatus(BaseModel):
    name: str = Field(description="The namespace its tools are served under.")
    transport: str = Field(description="'stdio' (a child process of this server) or 'http'.")
    target: str = Field(description="The command or URL.")
    state: str = Field(description="starting, running, restarting (after a failure, with backoff) or stopped.")
    pid: int | None = Field(description="The child process, while one runs.")
    restarts: int = Field(description="How many times it was started again after it went away.")
    tools: int = Field(description="How many of its tools are served here.")
    reason: str | None = Field(description="Why it is not running, or why it last went away.")


class GatewayStatus(BaseModel):
    upstreams: list[UpstreamStatus]

    def summary(self) -> str:
        if not self.upstreams:
            return "no upstream servers are configured"
        lines = []
        for u in self.upstreams:
            pid = f", pid {u.pid}" if u.pid is not None else ""
            why = f"; last problem: {u.reason}" if u.reason else ""
            lines.append(
                f"{u.name} ({u.transport} {u.target}): {u.state}{pid}, {u.tools} tools, {u.restarts} restarts{why}"
            )
        return "\n".join(lines)


@toolset.tool(read_only=True)
async def gateway_status(ctx: CallContext) -> GatewayStatus:
    """The upstream MCP servers this orchestrator mounts: each one's state, process id, restarts, tool count and
    last problem. Call it when a forwarded call fails, to see whether the upstream is coming back."""
    return GatewayStatus(upstreams=[UpstreamStatus(**entry) for entry in _gateway(ctx).status()])


__all__ = ["toolset"]
