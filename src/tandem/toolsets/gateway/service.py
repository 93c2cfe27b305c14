"""The gateway service: the upstream servers, running on an event loop of their own, and their tools published in
the registry under their namespace.

Services are entered once per server, from whichever thread starts it, and outlive every request; an MCP client
session needs a task group that lives as long as it does. So the upstreams run in a thread with its own event loop
(an anyio blocking portal), and calls hop onto it and back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio.from_thread
import mcp_types as types
from pydantic import BaseModel, ConfigDict, create_model

from tandem.core import (
    Audio,
    CallContext,
    EmbeddedResource,
    Image,
    Registry,
    ResourceLink,
    Text,
    ToolAnnotations,
    ToolError,
    ToolResult,
)
from tandem.core.command_policy import scrubbed_environment
from tandem.core.commands import tandem_argv
from tandem.core.gateway_settings import UpstreamSettings
from tandem.core.registry import Tool
from tandem.core.schema import Signature
from tandem.toolsets.gateway.upstream import Upstream

if TYPE_CHECKING:
    from tandem.config import Settings

logger = logging.getLogger("tandem.gateway")

TOOLSET = "gateway"
DEFAULT_UPSTREAM = "coder"
_CONTEXT = "_gateway_call_context"
"""The keyword a forwarding tool gets its call context under (no upstream argument can be named so: it would be
private to pydantic)."""
ROLE_VARIABLES = ("TANDEM_PROFILE", "TANDEM_TOOLSETS", "TANDEM_DISABLED_TOOLSETS")
"""What says which role this server plays; a child plays its own, so it does not inherit these."""

_PassThrough: type[BaseModel] = create_model("upstream_arguments", __config__=ConfigDict(extra="allow"))
"""The arguments of an upstream's tool, passed on as given: the upstream validates them against its schema."""


def upstream_specs(settings: Settings) -> list[UpstreamSettings]:
    """The configured upstreams; under profile ``orchestrator`` with none configured, the default coder."""
    gateway = settings.gateway
    if gateway.upstreams or settings.profile != "orchestrator" or not gateway.default_coder:
        return list(gateway.upstreams)
    argv = tandem_argv("serve", "--profile", "coder", "--workspace", str(settings.workspace))
    return [UpstreamSettings(name=DEFAULT_UPSTREAM, command=argv)]


class Gateway:
    """The running upstreams of one server."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.specs = upstream_specs(settings)
        self.upstreams: dict[str, Upstream] = {}
        self._portal_cm: contextlib.AbstractContextManager[anyio.from_thread.BlockingPortal] | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None

    def _child_env(self, spec: UpstreamSettings) -> dict[str, str]:
        inherited = {
            k: v for k, v in os.environ.items() if k not in ROLE_VARIABLES and not k.startswith("TANDEM_GATEWAY")
        }
        extra = {**spec.env, "TANDEM_WORKSPACE": str(self.settings.workspace)}
        return scrubbed_environment(self.settings.commands, inherited, extra)

    # -- life ----------------------------------------------------------------------------------------------------

    def __enter__(self) -> Gateway:
        if not self.specs:
            return self
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self.upstreams = self._portal.call(self._upstreams)
        for upstream in self.upstreams.values():
            self._portal.start_task_soon(upstream.supervise)
        # The first start of each upstream is waited for, so that the first tools/list already holds their tools.
        self._portal.call(self._settled)
        return self

    async def _upstreams(self) -> dict[str, Upstream]:
        """The upstreams, made on the gateway's loop, which their events and cancel scopes belong to."""
        return {
            spec.name: Upstream(
                spec,
                self.settings.gateway,
                workspace=self.settings.workspace,
                env=functools.partial(self._child_env, spec),
                on_tools=self._publish,
            )
            for spec in self.specs
        }

    async def _settled(self) -> None:
        with anyio.move_on_after(self.settings.gateway.start_timeout_s + 5):
            for upstream in self.upstreams.values():
                await upstream.settled.wait()

    def __exit__(self, *exc: object) -> None:
        if self._portal is None or self._portal_cm is None:
            return
        for upstream in self.upstreams.values():
            self._portal.call(upstream.stop)
        self._portal_cm.__exit__(None, None, None)
        self._portal = self._portal_cm = None

    # -- the tools ---------------------------------------------------------------------------------------------

    def _publish(self) -> None:
        """Serve every upstream's tools under its namespace (called on the gateway's loop when a list changes)."""
        tools = [
            _forwarding_tool(self, upstream.name, wire)
            for upstream in self.upstreams.values()
            for wire in upstream.tools
        ]
        self.registry.publish(TOOLSET, tools)
        logger.info("gateway serves %d upstream tools", len(tools))

    def resolve(self, tool: str) -> Tool:
        """The registry tool that ``tool`` names: ``coder.read_file``, or ``read_file`` when one upstream has it."""
        if not self.specs:
            raise ToolError(
                "no upstream servers are configured: add [[gateway.upstreams]] to tandem.toml, or serve with "
                "--profile orchestrator to run the default coder"
            )
        name, _, rest = tool.partition(".")
        if rest and name in self.upstreams:
            upstream, short = self.upstreams[name], rest
        else:
            having = [u for u in self.upstreams.values() if any(t.name == tool for t in u.tools)]
            if len(having) > 1:
                names = ", ".join(f"{u.name}.{tool}" for u in having)
                raise ToolError(f"several upstreams have a tool {tool!r}: name one of {names}")
            if having:
                upstream, short = having[0], tool
            elif len(self.upstreams) == 1:
                upstream, short = next(iter(self.upstreams.values())), tool
            else:
                raise ToolError(
                    f"no upstream has a tool {tool!r}; upstreams: {', '.join(self.upstreams)} "
                    "(call gateway_status, or name the tool as upstream.tool)"
                )
        found = self.registry.tools.get(f"{upstream.name}.{short}")
        if found is not None:
            return found
        if not upstream.tools:
            raise ToolError(upstream.unavailable())
        listed = sorted(t.name for t in upstream.tools)
        shown = ", ".join(listed[:60]) + (f", ... ({len(listed)} in all)" if len(listed) > 60 else "")
        raise ToolError(f"the {upstream.name} upstream has no tool {short!r}; it has: {shown}")

    async def call(self, upstream: str, tool: str, arguments: dict[str, Any], ctx: CallContext) -> ToolResult:
        """Forward a call to ``upstream`` on the gateway's loop; its progress comes back to ``ctx``."""
        portal = self._portal
        if portal is None:
            raise ToolError("the gateway is not running in this server")
        loop = asyncio.get_running_loop()

        async def progress(done: float, total: float | None, message: str | None) -> None:
            asyncio.run_coroutine_threadsafe(ctx.report_progress(done, total, message), loop)

        future = portal.start_task_soon(self.upstreams[upstream].call, tool, arguments, progress)
        wire = await asyncio.wrap_future(future)
        return _result(wire)

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "name": u.name,
                "transport": "http" if u.spec.url else "stdio",
                "target": u.target,
                "state": u.state,
                "pid": u.pid,
                "restarts": u.restarts,
                "tools": len(u.tools),
                "reason": u.reason,
            }
            for u in self.upstreams.values()
        ]

    def health(self) -> dict[str, Any]:
        """What /health says of the gateway: degraded while an upstream is not running."""
        states = {u.name: u.state for u in self.upstreams.values()}
        healthy = all(state == "running" for state in states.values())
        return {"status": "healthy" if healthy else "degraded", "upstreams": states}


@contextlib.contextmanager
def gateway_service(settings: Settings, registry: Registry) -> Iterator[Gateway]:
    """The gateway for the life of the server: upstreams started, then stopped and their processes killed."""
    with Gateway(settings, registry) as gateway:
        yield gateway


def _forwarding_tool(gateway: Gateway, upstream: str, wire: types.Tool) -> Tool:
    """A registry tool named ``upstream.<name>`` that forwards to the upstream, with its schema and hints."""

    async def forward(**arguments: Any) -> ToolResult:
        ctx: CallContext = arguments.pop(_CONTEXT)
        return await gateway.call(upstream, wire.name, arguments, ctx)

    hints = wire.annotations or types.ToolAnnotations()
    # Missing hints take the MCP spec's defaults (an upstream tool may change things and reach outside).
    annotations = ToolAnnotations(
        read_only=bool(hints.read_only_hint),
        destructive=hints.destructive_hint if hints.destructive_hint is not None else not hints.read_only_hint,
        idempotent=bool(hints.idempotent_hint),
        open_world=hints.open_world_hint if hints.open_world_hint is not None else True,
    )
    return Tool(
        name=f"{upstream}.{wire.name}",
        title=wire.title,
        description=wire.description or f"The {wire.name} tool of the {upstream} upstream server.",
        fn=forward,
        signature=Signature(
            arguments=_PassThrough,
            context_param=_CONTEXT,
            returns=ToolResult,
            input_schema=dict(wire.input_schema),
            output_schema=dict(wire.output_schema) if wire.output_schema is not None else None,
        ),
        annotations=annotations,
        toolset=TOOLSET,
    )


def _result(wire: types.CallToolResult) -> ToolResult:
    """The upstream's result as the core's: the same content blocks, structured content and error flag."""
    content = [block for block in map(_content, wire.content) if block is not None]
    return ToolResult(content=content, structured=wire.structured_content, is_error=bool(wire.is_error))


def _content(block: Any) -> Any:
    match block:
        case types.TextContent():
            return Text(block.text)
        case types.ImageContent():
            return Image(base64.b64decode(block.data), block.mime_type)
        case types.AudioContent():
            return Audio(base64.b64decode(block.data), block.mime_type)
        case types.ResourceLink():
            return ResourceLink(str(block.uri), block.name, block.description, block.mime_type)
        case types.EmbeddedResource():
            inner = block.resource
            mime = inner.mime_type or "text/plain"
            if isinstance(inner, types.TextResourceContents):
                return EmbeddedResource(str(inner.uri), mime, text=inner.text)
            return EmbeddedResource(str(inner.uri), mime, blob=base64.b64decode(inner.blob))
    logger.warning("an upstream returned a content block of an unknown kind: %r", type(block).__name__)
    return None
