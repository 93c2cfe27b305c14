"""The MCP binding: the registry served through the official SDK's low-level ``Server``.

Every inbound message reaches ``TandemServer`` through the SDK's middleware seam, which every SDK transport
(stdio, Streamable HTTP in both protocol generations, SSE) and our WebSocket transport share; there it runs through
the interceptor chain. Outbound notifications and requests that tools make go through the chain as well.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import time
import warnings
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import anyio
import mcp_types as types
from mcp.server import NotificationOptions, Server
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.caching import CacheHint
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.models import InitializationOptions
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.session import ServerSession
from mcp.shared.dispatcher import DispatchContext
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.transport_context import TransportContext
from mcp_types import CORE_RESULT_TYPES, SERVER_INFO_META_KEY, methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field, ValidationError

from tandem import __version__
from tandem.config import Settings
from tandem.core.content import (
    Audio,
    Content,
    EmbeddedResource,
    Image,
    InputRequired,
    PromptMessage,
    ResourceLink,
    Text,
    ToolResult,
)
from tandem.core.context import CallContext, LogLevel
from tandem.core.errors import InvalidArguments, MissingCapability, NotFound, ToolError
from tandem.core.registry import Prompt, Registry, Tool
from tandem.core.services import Services
from tandem.server.interceptors import (
    Blocked,
    InterceptorChain,
    Message,
    RequestLogInterceptor,
    TimingInterceptor,
)
from tandem.server.sessions import SessionTracker, current_exchange, current_transport
from tandem.server.tasks import TASKS_EXTENSION, Task, TaskStore

logger = logging.getLogger("tandem.server")

INSTRUCTIONS = (
    "Tandem serves tools for working on the codebase in its workspace. Tools are grouped into toolsets; "
    "call tools/list to see them. Errors say what was wrong and what to try instead."
)

_CONNECTION_KEY = "tandem.session"
_correlation: ContextVar[str] = ContextVar("tandem_correlation_id", default="")
"""The correlation id of the request being handled; the handler runs in the task that set it."""
# Listings change only when the server restarts with other toolsets, but clients must not cache across that.
_CACHEABLE = ("tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read")
RESOURCE_NOT_FOUND = -32002
ROOTS_TIMEOUT_S = 10.0
"""How long a client has to answer roots/list."""
_ROOTS_KEY = "client_roots"
_TOOLS_SEEN_KEY = "tools_revision"
"""The registry revision of the tool list a session was last sent."""
MISSING_REQUIRED_CLIENT_CAPABILITY = types.MISSING_REQUIRED_CLIENT_CAPABILITY


class TandemServer:
    """The registry bound to MCP: build once, then hand ``server`` to any transport."""

    def __init__(self, registry: Registry, settings: Settings, chain: InterceptorChain | None = None) -> None:
        self.registry = registry
        self.settings = settings
        self.started = time.time()
        self.lifespan_state: Any = {}
        """What the SDK server's lifespan yielded, for transports that call its kernel directly."""
        self.sessions = SessionTracker()
        self.services = Services(registry.services, settings)
        self.timing = TimingInterceptor()
        if chain is None:
            chain = InterceptorChain([RequestLogInterceptor()] if settings.log_requests else [])
            chain.add(self.timing)
        self.chain = chain
        self._tools = [_wire_tool(tool) for tool in registry.tools.values()]
        self._tools_revision = registry.revision
        self._resources = [
            types.Resource(uri=r.uri, name=r.name, description=r.description or None, mime_type=r.mime_type)
            for r in registry.resources.values()
        ]
        self._templates = [
            types.ResourceTemplate(
                uri_template=t.uri, name=t.name, description=t.description or None, mime_type=t.mime_type
            )
            for t in registry.templates.values()
        ]
        self._prompts = [_wire_prompt(p) for p in registry.prompts.values()]
        has_prompts = bool(registry.prompts or registry.prompt_sources)
        has_resources = bool(registry.resources or registry.templates)
        with warnings.catch_warnings():
            # logging/setLevel is deprecated from 2026-07-28 but clients of 2025-11-25 still send it.
            warnings.simplefilter("ignore")
            self.server: Server[Any] = Server(
                "tandem",
                version=__version__,
                title="Tandem",
                instructions=INSTRUCTIONS,
                # Header checks on 2026-07-28 calls look a tool's schema up here instead of listing every tool.
                get_tool_input_schema=self._input_schema,
                cache_hints={method: CacheHint(ttl_ms=0, scope="private") for method in _CACHEABLE},
                on_list_tools=self._list_tools,
                on_call_tool=self._call_tool,
                on_list_resources=self._list_resources if has_resources else None,
                on_list_resource_templates=self._list_templates if has_resources else None,
                on_read_resource=self._read_resource if has_resources else None,
                on_subscribe_resource=self._subscribe if has_resources else None,
                on_unsubscribe_resource=self._unsubscribe if has_resources else None,
                on_list_prompts=self._list_prompts if has_prompts else None,
                on_get_prompt=self._get_prompt if has_prompts else None,
                on_completion=self._complete if has_prompts or registry.templates else None,
                on_set_logging_level=self._set_logging_level,
                on_roots_list_changed=self._roots_changed,
                lifespan=self._lifespan,
            )
        if not settings.tracing:
            # The SDK's OpenTelemetry layer makes two spans per request even with no exporter installed.
            self.server.middleware = [m for m in self.server.middleware if not isinstance(m, OpenTelemetryMiddleware)]
        # State handed to a client in an InputRequired result comes back sealed, so it cannot be forged; our chain
        # runs inside the boundary and sees plaintext.
        self.server.middleware.append(RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience="tandem"))
        self.server.middleware.append(self._intercept)
        self.tasks = TaskStore()
        self._server_info = self.server.server_info.model_dump(by_alias=True, mode="json", exclude_none=True)
        if any(tool.task_support != "forbidden" for tool in registry.tools.values()):
            self.server.extensions[TASKS_EXTENSION] = {}
            self.server.add_request_handler("tasks/get", TaskParams, self._tasks_get)
            self.server.add_request_handler("tasks/update", TaskUpdateParams, self._tasks_update)
            self.server.add_request_handler("tasks/cancel", TaskParams, self._tasks_cancel)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _server: Server[Any]) -> AsyncIterator[dict[str, Any]]:
        """Every connection the SDK runs (and the HTTP app, once) holds the toolset services while it lives."""
        async with self.services.held_async():
            yield {}

    def initialization_options(self) -> InitializationOptions:
        # A server whose toolsets publish tools at runtime tells its clients when the list changes.
        changing = NotificationOptions(tools_changed=bool(self.registry.publishers))
        return self.server.create_initialization_options(changing)

    async def call_tool_directly(
        self, dctx: DispatchContext[TransportContext], connection: Connection, params: dict[str, Any], request: Any
    ) -> dict[str, Any]:
        """Serve one ``tools/call`` on a single-exchange connection and return its wire result.

        What the SDK's ``serve_one`` does for this method (the per-version surface check, the server middleware,
        this server's handler, the 2026-07-28 result envelope), without building its per-request kernel. For a
        request that asks for no progress and no logs (``ctx.meta`` is left empty) and whose answer has no room
        for notifications; errors are raised as the kernel raises them.
        """
        method = "tools/call"
        version = connection.protocol_version
        ctx: ServerRequestContext[Any, Any] = ServerRequestContext(
            session=ServerSession(dctx, connection, request_meta=None),
            lifespan_context=self.lifespan_state,
            method=method,
            params=params,
            request_id=dctx.request_id,
            meta=None,
            protocol_version=version,
            request=request,
        )

        async def handle(ctx: ServerRequestContext[Any, Any]) -> dict[str, Any]:
            try:
                methods.validate_client_request(ctx.method, version, ctx.params)
            except KeyError:
                raise MCPError(code=types.METHOD_NOT_FOUND, message="Method not found", data=ctx.method) from None
            typed = types.CallToolRequestParams.model_validate(ctx.params or {}, by_name=False)
            result = await self._call_tool(ctx, typed)
            if isinstance(result, types.CallToolResult):
                wire = _dump(result)  # built by ``tool_result`` to the spec's shape: nothing for the sieve to drop
            else:  # an InputRequired, or a task an extension shapes: the SDK's sieve for core shapes, as it does
                wire = dict(result) if isinstance(result, dict) else _dump(result)
                result_type = wire.get("resultType")
                modern_extension = isinstance(result_type, str) and result_type not in CORE_RESULT_TYPES
                if version not in MODERN_PROTOCOL_VERSIONS or not modern_extension:
                    wire = methods.serialize_server_result(method, version, wire)
            if version in MODERN_PROTOCOL_VERSIONS:
                wire.setdefault("resultType", "complete")
                meta = wire.get("_meta")
                if meta is None or (isinstance(meta, dict) and meta.get(SERVER_INFO_META_KEY) is None):
                    wire["_meta"] = {**(meta or {}), SERVER_INFO_META_KEY: dict(self._server_info)}
            return wire

        call = handle
        for layer in reversed(self.server.middleware):
            call = functools.partial(_through, layer, call)
        try:
            result = await call(ctx)
        finally:
            await connection.exit_stack.aclose()
        return dict(result) if isinstance(result, dict) else _dump(result)

    def status(self) -> dict[str, Any]:
        """What /health and the server toolset report."""
        services = self.services.report("health")
        healthy = all(report.get("status", "healthy") == "healthy" for report in services.values())
        return {
            "status": "healthy" if healthy else "degraded",
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 3),
            "toolsets": {name: len(ts.tools) for name, ts in self.registry.toolsets.items()},
            "sessions": len(self.sessions),
            "sessions_by_transport": self.sessions.by_transport(),
            "tasks": len(self.tasks),
            "requests": self.timing.snapshot(),
            "services": services,
        }

    # -- the interceptor seam -------------------------------------------------------------------------------

    def _session(self, ctx: ServerRequestContext[Any, Any]) -> tuple[str | None, str, dict[str, Any]]:
        """The (session id, transport, per-session state) of the connection ``ctx`` arrived on.

        A stateless HTTP request (no ``Mcp-Session-Id``, or protocol 2026-07-28) is a connection of its own and no
        session: it gets no id and is not counted.
        """
        # The SDK's handler context exposes the Connection only privately until its Context rework (L54).
        connection = ctx.session._connection
        known = connection.state.get(_CONNECTION_KEY)
        if known is not None:
            return known
        transport = _transport_of(ctx)
        if transport == "streamable-http" and connection.session_id is None:
            known = (None, transport, {})
        else:
            info = self.sessions.open(transport, connection.session_id)
            connection.exit_stack.callback(self.sessions.close, info.id)
            known = (info.id, transport, {})
        connection.state[_CONNECTION_KEY] = known
        return known

    async def _intercept(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        session_id, transport, _ = self._session(ctx)
        is_request = ctx.request_id is not None
        message = Message(
            direction="inbound",
            kind="request" if is_request else "notification",
            method=ctx.method,
            params=dict(ctx.params) if ctx.params is not None else None,
            id=ctx.request_id,
            transport=transport,
            session_id=session_id,
        )
        _correlation.set(message.correlation_id)

        async def terminal(m: Message) -> Message | None:
            inner = (
                ctx
                if m.params is message.params and m.method == message.method
                else replace(ctx, method=m.method, params=m.params)
            )
            try:
                result = await call_next(inner)
            except MCPError as exc:
                return m.response(error=exc.error.model_dump(mode="json", exclude_none=True))
            except ValidationError as exc:
                return m.response(
                    error={"code": types.INVALID_PARAMS, "message": "Invalid request parameters", "data": str(exc)}
                )
            if not is_request:
                return None
            if isinstance(result, BaseModel):
                result = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            return m.response(result=result)

        exchange = current_exchange.get()
        try:
            if exchange is None:
                response = await self.chain.run(message, terminal)
            else:
                with anyio.CancelScope() as scope:
                    exchange.scopes.append(scope)
                    if exchange.cancelled:
                        scope.cancel()
                    response = await self.chain.run(message, terminal)
                if scope.cancelled_caught:
                    raise MCPError(code=types.INTERNAL_ERROR, message="Request cancelled: the client hung up")
        except Blocked as exc:
            raise MCPError(code=exc.code, message=exc.message, data=exc.data) from None
        if response is None:
            return None
        if response.error is not None:
            raise MCPError(
                code=response.error.get("code", types.INTERNAL_ERROR),
                message=response.error.get("message", "error"),
                data=response.error.get("data"),
            )
        return response.result

    async def emit(self, ctx: ServerRequestContext[Any, Any], method: str, params: dict[str, Any], send: Any) -> None:
        """Pass one outbound notification through the chain; ``send`` delivers it if no layer blocks it."""
        session_id, transport, _ = self._session(ctx)
        message = Message(
            direction="outbound",
            kind="notification",
            method=method,
            params=params,
            transport=transport,
            session_id=session_id,
            correlation_id=_correlation.get(),
        )

        async def terminal(m: Message) -> None:
            await send(m.params or {})

        try:
            await self.chain.run(message, terminal)
        except Blocked as exc:
            logger.info("outbound %s blocked: %s", method, exc.message)

    # -- handlers ---------------------------------------------------------------------------------------------

    def call_context(self, ctx: ServerRequestContext[Any, Any], params: Any = None) -> CallContext:
        """The core's view of one call; ``params`` are the request's typed params when they carry input responses."""
        session_id, transport, state = self._session(ctx)
        capabilities = ctx.session.client_capabilities
        return CallContext(
            protocol_version=ctx.protocol_version,
            client_capabilities=capabilities.model_dump(by_alias=True, exclude_none=True) if capabilities else {},
            input_responses=_plain(getattr(params, "input_responses", None)),
            request_state=getattr(params, "request_state", None),
            workspace=self.settings.workspace,
            settings=self.settings,
            session_id=session_id,
            transport=transport,
            correlation_id=_correlation.get(),
            peer=ClientPeer(self, ctx),
            state=state,
            server_status=self.status,
            services=self.services.running,
        )

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        tool = self.registry.tools.get(name)
        return tool.input_schema if tool is not None else None

    async def _list_tools(self, ctx: ServerRequestContext[Any, Any], params: Any) -> types.ListToolsResult:
        revision = self.registry.revision
        if revision != self._tools_revision:  # a toolset published tools at runtime (the gateway's upstreams)
            self._tools = [_wire_tool(tool) for tool in self.registry.tools.values()]
            self._tools_revision = revision
        _, _, state = self._session(ctx)
        state[_TOOLS_SEEN_KEY] = revision
        return types.ListToolsResult(tools=self._tools)

    async def _tell_tools_changed(self, ctx: ServerRequestContext[Any, Any]) -> None:
        """Send ``notifications/tools/list_changed`` to a session whose last listing is out of date."""
        _, _, state = self._session(ctx)
        seen = state.get(_TOOLS_SEEN_KEY)
        if seen is None or seen == self.registry.revision or not ctx.session.can_send_request:
            return
        state[_TOOLS_SEEN_KEY] = self.registry.revision

        async def send(_params: dict[str, Any]) -> None:
            await ctx.session.send_tool_list_changed()

        await self.emit(ctx, "notifications/tools/list_changed", {}, send)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        await self._tell_tools_changed(ctx)
        try:
            tool = self.registry.tool(params.name)
            call_ctx = self.call_context(ctx, params)
            call_ctx.roots = await self._client_roots(ctx)
            result = None
            if tool.task_support != "forbidden":
                extensions = call_ctx.client_capabilities.get("extensions") or {}
                if TASKS_EXTENSION in extensions and ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
                    result = await self._call_as_task(tool, params, call_ctx)
                    if isinstance(result, dict):
                        return result
                elif tool.task_support == "required":
                    raise MissingCapability(
                        f"tool {tool.name!r} runs only as a task: declare the {TASKS_EXTENSION} extension",
                        {"extensions": {TASKS_EXTENSION: {}}},
                    )
                else:
                    result = await self.registry.invoke(tool, params.arguments, call_ctx)
            else:
                result = await self.registry.invoke(tool, params.arguments, call_ctx)
        except (NotFound, InvalidArguments) as exc:
            data = {"errors": exc.errors} if isinstance(exc, InvalidArguments) else None
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc), data=data) from None
        except MissingCapability as exc:
            raise _missing_capability(exc) from None
        except ToolError as exc:
            return types.CallToolResult(content=[types.TextContent(text=str(exc))], is_error=True)
        except Exception:
            correlation = _correlation.get()
            logger.exception("tool %s failed (correlation id %s)", params.name, correlation)
            text = (
                f"Tool {params.name!r} failed unexpectedly; the server log has details (correlation id {correlation})."
            )
            return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)
        return self.tool_result(result, ctx.protocol_version)

    async def _call_as_task(self, tool: Tool, params: types.CallToolRequestParams, call_ctx: CallContext) -> Any:
        """Call a task-capable tool: it answers like any tool until it calls ``run_as_task``; from then on the client
        gets the task (SEP-2663 CreateTaskResult) and the call goes on in the background."""
        arguments = params.arguments
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[tuple[str, Any]] = loop.create_future()

        def detach() -> None:
            if not outcome.done():
                outcome.set_result(("task", None))
                # The request is answered from here on: progress and logs have no client to go to.
                ctx.peer = BackgroundPeer(tool.name)

        ctx = replace(call_ctx, detacher=detach)

        async def body(task: Task) -> None:
            nonlocal ctx
            while True:
                try:
                    result = await self.registry.invoke(tool, arguments, ctx)
                except Exception as exc:
                    if not outcome.done():  # still an ordinary call: it fails as one
                        outcome.set_result(("raised", exc))
                        return
                    _settle_failure(task, exc)
                    return
                if not outcome.done():
                    outcome.set_result(("returned", result))
                    return
                if not isinstance(result, InputRequired):
                    task.complete(_dump(self.tool_result(result, call_ctx.protocol_version)))
                    return
                responses = await task.ask(result.requests)
                ctx = replace(ctx, input_responses=responses, request_state=result.state)

        task = self.tasks.start(body)
        try:
            kind, value = await outcome
        except BaseException:
            self.tasks.cancel(task)  # the caller gave up before the call became a task
            raise
        if kind == "raised":
            raise value
        if kind == "returned":
            return value
        self.tasks.publish(task)
        return {"resultType": "task", **task.envelope()}

    def _task(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> Task:
        capabilities = ctx.session.client_capabilities
        extensions = (capabilities.model_dump(by_alias=True, exclude_none=True) if capabilities else {}).get(
            "extensions"
        ) or {}
        if TASKS_EXTENSION not in extensions:
            raise _missing_capability(
                MissingCapability(
                    f"{ctx.method} needs the {TASKS_EXTENSION} extension", {"extensions": {TASKS_EXTENSION: {}}}
                )
            )
        headers = getattr(ctx.request, "headers", None)
        if headers is not None and "mcp-method" in headers and headers.get("mcp-name") != params.task_id:
            raise MCPError(code=types.HEADER_MISMATCH, message="Mcp-Name header does not match the taskId")
        task = self.tasks.get(params.task_id)
        if task is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown task: {params.task_id!r}")
        return task

    async def _tasks_get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        return self._task(ctx, params).detailed()

    async def _tasks_update(self, ctx: ServerRequestContext[Any, Any], params: TaskUpdateParams) -> dict[str, Any]:
        self._task(ctx, params).answer(_plain(params.input_responses))
        return {"resultType": "complete"}

    async def _tasks_cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        self.tasks.cancel(self._task(ctx, params))
        return {"resultType": "complete"}

    def tool_result(self, result: Any, protocol_version: str = "") -> types.CallToolResult | types.InputRequiredResult:
        cap = self.settings.max_output_chars
        if isinstance(result, InputRequired):
            return _input_required(result, protocol_version, types.CallToolResult)
        if isinstance(result, ToolResult):
            return types.CallToolResult(
                content=[_wire_content(c, cap) for c in result.content],
                structured_content=result.structured,
                is_error=result.is_error,
            )
        if isinstance(result, BaseModel):
            data = result.model_dump(mode="json", by_alias=True)
            blocks = [_text(json.dumps(data, ensure_ascii=False), cap)]
            summary = getattr(result, "summary", None)
            if callable(summary):  # a short human-readable text ahead of the JSON (see tandem.core.Summarized)
                blocks.insert(0, _text(summary(), cap))
            return types.CallToolResult(content=blocks, structured_content=data)
        if result is None:
            return types.CallToolResult(content=[])
        if isinstance(result, str):
            return types.CallToolResult(content=[_text(result, cap)])
        if isinstance(result, Content):
            return types.CallToolResult(content=[_wire_content(result, cap)])
        if isinstance(result, list) and result and all(isinstance(c, Content) for c in result):
            return types.CallToolResult(content=[_wire_content(c, cap) for c in result])
        return types.CallToolResult(content=[_text(json.dumps(result, ensure_ascii=False, default=str), cap)])

    async def _list_resources(self, ctx: ServerRequestContext[Any, Any], params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=self._resources)

    async def _list_templates(
        self, ctx: ServerRequestContext[Any, Any], params: Any
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=self._templates)

    async def _read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            found, variables = self.registry.find_resource(uri)
            call_ctx = self.call_context(ctx)
            data = await found.read(variables, call_ctx)
        except NotFound as exc:
            # -32002 until 2025-11-25; the 2026-07-28 spec retired it for invalid params.
            code = types.INVALID_PARAMS if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS else RESOURCE_NOT_FOUND
            raise MCPError(code=code, message=str(exc), data={"uri": uri}) from None
        except (InvalidArguments, ToolError) as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None
        if isinstance(data, bytes):
            contents: Any = types.BlobResourceContents(
                uri=uri, mime_type=found.mime_type, blob=base64.b64encode(data).decode()
            )
        else:
            contents = types.TextResourceContents(uri=uri, mime_type=found.mime_type, text=str(data))
        return types.ReadResourceResult(contents=[contents])

    async def _list_prompts(self, ctx: ServerRequestContext[Any, Any], params: Any) -> types.ListPromptsResult:
        if not self.registry.prompt_sources:
            return types.ListPromptsResult(prompts=self._prompts)
        runtime = await self.registry.runtime_prompts(self.call_context(ctx))
        return types.ListPromptsResult(prompts=self._prompts + [_wire_prompt(p) for p in runtime])

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        try:
            call_ctx = self.call_context(ctx, params)
            prompt = await self.registry.find_prompt(params.name, call_ctx)
            rendered = await prompt.render(params.arguments, call_ctx)
        except (NotFound, InvalidArguments, ToolError) as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None
        except MissingCapability as exc:
            raise _missing_capability(exc) from None
        if isinstance(rendered, InputRequired):
            return _input_required(rendered, ctx.protocol_version, types.GetPromptResult)
        if isinstance(rendered, str):
            rendered = [PromptMessage("user", Text(rendered))]
        cap = self.settings.max_output_chars
        messages = [types.PromptMessage(role=m.role, content=_wire_content(m.content, cap)) for m in rendered]
        return types.GetPromptResult(description=prompt.description or None, messages=messages)

    async def _complete(
        self, ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        ref = params.ref
        name = ref.name if isinstance(ref, types.PromptReference) else ref.uri
        context = dict(params.context.arguments or {}) if params.context is not None else {}
        values = await self.registry.complete(name, params.argument.name, params.argument.value, context)
        # The spec caps one answer at 100 values.
        return types.CompleteResult(
            completion=types.Completion(values=values[:100], total=len(values), has_more=len(values) > 100)
        )

    async def _subscribe(self, ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams) -> Any:
        _, _, state = self._session(ctx)
        state.setdefault("subscriptions", set()).add(str(params.uri))
        return types.EmptyResult()

    async def _unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams) -> Any:
        _, _, state = self._session(ctx)
        state.setdefault("subscriptions", set()).discard(str(params.uri))
        return types.EmptyResult()

    async def _client_roots(self, ctx: ServerRequestContext[Any, Any]) -> tuple[Path, ...]:
        """The directories the client's roots name (file:// URIs), asked once per session and again after the
        client says they changed; none when the client has no roots or no way to be asked."""
        capabilities = ctx.session.client_capabilities
        if capabilities is None or capabilities.roots is None or not ctx.session.can_send_request:
            return ()
        _, _, state = self._session(ctx)
        cached = state.get(_ROOTS_KEY)
        if cached is None:
            try:
                with anyio.fail_after(ROOTS_TIMEOUT_S), warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)  # deprecated in 2026-07-28, not before
                    listed = await ctx.session.list_roots()
            except (MCPError, TimeoutError) as exc:
                logger.warning("the client did not list its roots (%s); paths stay confined to the workspace", exc)
                return ()
            cached = tuple(_root_path(str(root.uri)) for root in listed.roots if str(root.uri).startswith("file://"))
            state[_ROOTS_KEY] = cached
        return cached

    async def _roots_changed(self, ctx: ServerRequestContext[Any, Any], params: Any) -> None:
        _, _, state = self._session(ctx)
        state.pop(_ROOTS_KEY, None)

    async def _set_logging_level(
        self, ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        _, _, state = self._session(ctx)
        state["log_level"] = params.level
        return types.EmptyResult()


_LOG_ORDER: dict[str, int] = {
    name: i for i, name in enumerate(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"])
}


class ClientPeer:
    """The client of one call, as the core's ``Peer``: every message it sends passes the interceptor chain."""

    def __init__(self, owner: TandemServer, ctx: ServerRequestContext[Any, Any]) -> None:
        self._owner = owner
        self._ctx = ctx

    def _require(self, capability: str) -> None:
        capabilities = self._ctx.session.client_capabilities
        if capabilities is None or getattr(capabilities, capability, None) is None:
            raise MissingCapability(
                f"the client did not declare the {capability!r} capability this call needs", {capability: {}}
            )
        if not self._ctx.session.can_send_request:
            raise ToolError(
                f"this connection cannot carry a {capability} request to the client (stateless HTTP or "
                "protocol 2026-07-28); connect with a session, or use a tool that asks through InputRequired"
            )

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        token = self._ctx.meta.get("progress_token") if self._ctx.meta else None
        if token is None:
            return
        params: dict[str, Any] = {"progressToken": token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message

        async def send(p: dict[str, Any]) -> None:
            await self._ctx.session.report_progress(p["progress"], p.get("total"), p.get("message"))

        await self._owner.emit(self._ctx, "notifications/progress", params, send)

    async def log(self, level: LogLevel, data: Any, logger_name: str | None) -> None:
        _, _, state = self._owner._session(self._ctx)
        if _LOG_ORDER[level] < _LOG_ORDER.get(state.get("log_level", "debug"), 0):
            return
        params: dict[str, Any] = {"level": level, "data": data}
        if logger_name:
            params["logger"] = logger_name

        async def send(p: dict[str, Any]) -> None:
            await self._ctx.session.send_log_message(
                p["level"], p["data"], p.get("logger"), related_request_id=self._ctx.request_id
            )

        await self._owner.emit(self._ctx, "notifications/message", params, send)

    async def sample(self, prompt: str, *, system: str | None, max_tokens: int) -> str:
        self._require("sampling")
        result = await self._ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(text=prompt))],
            max_tokens=max_tokens,
            system_prompt=system,
            related_request_id=self._ctx.request_id,
        )
        content = result.content
        return content.text if isinstance(content, types.TextContent) else str(content)

    async def elicit(self, message: str, schema: dict[str, Any]) -> dict[str, Any] | None:
        self._require("elicitation")
        result = await self._ctx.session.elicit_form(message, schema, related_request_id=self._ctx.request_id)
        return dict(result.content or {}) if result.action == "accept" else None


class TaskParams(types.RequestParams):
    task_id: str = Field(alias="taskId")


class TaskUpdateParams(TaskParams):
    input_responses: dict[str, Any] = Field(alias="inputResponses")


class BackgroundPeer:
    """The client of a task: gone once the task is created, so progress and logs go to the server log."""

    def __init__(self, tool: str) -> None:
        self._tool = tool

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        logger.debug("task of %s: %s/%s %s", self._tool, progress, total, message or "")

    async def log(self, level: LogLevel, data: Any, logger_name: str | None) -> None:
        logger.info("task of %s: %s", self._tool, data)

    async def sample(self, prompt: str, *, system: str | None, max_tokens: int) -> str:
        raise ToolError("a task cannot sample the client's model; return InputRequired with a sampling request")

    async def elicit(self, message: str, schema: dict[str, Any]) -> dict[str, Any] | None:
        raise ToolError("a task cannot elicit directly; return InputRequired with an elicitation request")


def _settle_failure(task: Task, exc: Exception) -> None:
    """A tool error completes a task with an error result; any other failure fails it (a protocol error)."""
    if isinstance(exc, ToolError):
        task.complete(_dump(types.CallToolResult(content=[types.TextContent(text=str(exc))], is_error=True)))
    elif isinstance(exc, MCPError):
        task.fail(exc.error.model_dump(mode="json", exclude_none=True))
    else:
        logger.error("task %s failed: %s: %s", task.id, type(exc).__name__, exc)
        task.fail({"code": types.INTERNAL_ERROR, "message": "Internal error while running the task"})


def _root_path(uri: str) -> Path:
    """The directory a ``file://`` root URI names (``file:///home/me/repo`` -> ``/home/me/repo``)."""
    parts = urlsplit(uri)
    return Path(url2pathname(parts.path))


def _through(layer: Any, call_next: Any, ctx: ServerRequestContext[Any, Any]) -> Any:
    """One server middleware layer, bound to the rest of the chain (the SDK composes its layers the same way)."""
    return layer(ctx, call_next)


def _dump(result: BaseModel) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def _plain(value: Any) -> Any:
    """Typed SDK values (input responses) as plain JSON data, which is all the core deals in."""
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _missing_capability(exc: MissingCapability) -> MCPError:
    return MCPError(
        code=MISSING_REQUIRED_CLIENT_CAPABILITY, message=str(exc), data={"requiredCapabilities": exc.required}
    )


def _input_required(result: InputRequired, protocol_version: str, shape: type) -> Any:
    if protocol_version not in MODERN_PROTOCOL_VERSIONS:
        # Before 2026-07-28 a client cannot answer this shape; it asks for input through sampling/elicitation.
        text = "this call needs input the client can only give over protocol 2026-07-28; reconnect with it"
        if shape is types.CallToolResult:
            return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)
        raise MCPError(code=types.INVALID_PARAMS, message=text)
    return types.InputRequiredResult(input_requests=result.requests, request_state=result.state)


def _transport_of(ctx: ServerRequestContext[Any, Any]) -> str:
    request = ctx.request
    scope = getattr(request, "scope", None)
    if scope is not None:
        return "sse" if scope["path"].rstrip("/").endswith("/messages") else "streamable-http"
    return current_transport.get()


def _wire_prompt(prompt: Prompt) -> types.Prompt:
    return types.Prompt(
        name=prompt.name,
        title=prompt.title,
        description=prompt.description or None,
        arguments=[
            types.PromptArgument(name=a.name, description=a.description or None, required=a.required)
            for a in prompt.arguments
        ],
    )


def _wire_tool(tool: Tool) -> types.Tool:
    a = tool.annotations
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=tool.input_schema,
        output_schema=tool.signature.output_schema,
        execution=types.ToolExecution(task_support=tool.task_support) if tool.task_support != "forbidden" else None,
        annotations=types.ToolAnnotations(
            title=tool.title,
            read_only_hint=a.read_only,
            destructive_hint=a.destructive,
            idempotent_hint=a.idempotent,
            open_world_hint=a.open_world,
        ),
    )


def _text(text: str, cap: int) -> types.TextContent:
    if len(text) > cap:
        text = (
            text[:cap] + f"\n\n[truncated: showing {cap:,} of {len(text):,} characters; ask for less, e.g. a narrower "
            "range or a filter]"
        )
    return types.TextContent(text=text)


def _wire_content(content: Content, cap: int) -> Any:
    match content:
        case Text(text):
            return _text(text, cap)
        case Image(data, mime):
            return types.ImageContent(data=base64.b64encode(data).decode(), mime_type=mime)
        case Audio(data, mime):
            return types.AudioContent(data=base64.b64encode(data).decode(), mime_type=mime)
        case EmbeddedResource(uri, mime, text, blob):
            resource: Any = (
                types.TextResourceContents(uri=uri, mime_type=mime, text=text)
                if blob is None
                else types.BlobResourceContents(uri=uri, mime_type=mime, blob=base64.b64encode(blob).decode())
            )
            return types.EmbeddedResource(resource=resource)
        case ResourceLink(uri, name, description, mime):
            return types.ResourceLink(uri=uri, name=name, description=description, mime_type=mime)
    raise TypeError(f"not a content block: {content!r}")
