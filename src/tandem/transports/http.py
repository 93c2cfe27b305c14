"""One ASGI app on one port: Streamable HTTP at /mcp, legacy HTTP+SSE at /sse and /messages/, WebSocket at /ws,
the plain JSON-RPC API at POST / (and POST /reindex), GET /health and GET /metrics. All of them serve the same
``TandemServer``."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import uvicorn
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from tandem.config import Settings
from tandem.server import TandemServer
from tandem.server.event_store import MemoryEventStore
from tandem.transports.jsonrpc import JsonRpcApi
from tandem.transports.mcp_endpoint import McpEndpoint
from tandem.transports.metrics import PROMETHEUS_TYPE, metrics_json, prometheus_text
from tandem.transports.websocket import CLOSE_POLICY_VIOLATION, serve_websocket

SSE_RETRY_MS = 1000
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


def security_settings(settings: Settings) -> TransportSecuritySettings:
    """Host and Origin checks against DNS rebinding: loopback always, plus what the settings allow."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*LOOPBACK_HOSTS, *settings.allowed_hosts, *_bound_host(settings)],
        allowed_origins=[*LOOPBACK_ORIGINS, *settings.allowed_origins],
    )


def _bound_host(settings: Settings) -> list[str]:
    """A server bound to one specific non-loopback address accepts that address as Host."""
    try:
        address = ipaddress.ip_address(settings.host)
    except ValueError:
        return [f"{settings.host}:*", settings.host]
    if address.is_unspecified or address.is_loopback:
        return []
    shown = f"[{address}]" if address.version == 6 else str(address)
    return [f"{shown}:*", shown]


def build_app(tandem: TandemServer) -> TandemApp:
    """The ASGI app serving every HTTP-borne transport of ``tandem``."""
    settings = tandem.settings
    security = security_settings(settings)
    guard = TransportSecurityMiddleware(security)

    event_store = None if settings.stateless_http else MemoryEventStore()

    def session_manager(json_response: bool) -> StreamableHTTPSessionManager:
        return StreamableHTTPSessionManager(
            app=tandem.server,
            json_response=json_response,
            stateless=settings.stateless_http,
            # A client that loses its SSE stream reconnects with Last-Event-ID and gets what it missed.
            event_store=event_store,
            retry_interval=SSE_RETRY_MS,
            security_settings=security,
            max_request_body_size=settings.max_body_bytes,
            session_idle_timeout=settings.session_idle_timeout,
            max_sessions=settings.max_sessions,
        )

    managers = [session_manager(json_response=settings.stateless_http)]
    if settings.stateless_http:
        # Stateless answers are one JSON document, which has no room for progress notifications; a call that asks
        # for progress is answered as an SSE stream instead.
        managers.append(session_manager(json_response=False))
    mcp_endpoint = McpEndpoint(
        tandem,
        guard,
        StreamableHTTPASGIApp(managers[0]),
        stream_app=StreamableHTTPASGIApp(managers[1]) if settings.stateless_http else None,
        max_body=settings.max_body_bytes,
    )
    api = JsonRpcApi(tandem)
    sse = SseServerTransport("/messages/", security_settings=security, max_request_body_size=settings.max_body_bytes)

    async def handle_sse(request: Request) -> Response:
        # The SDK's own check answers and then raises, which would break the connection; answer here first.
        refusal = await guard.validate_request(request)
        if refusal is not None:
            return refusal
        async with sse.connect_sse(request.scope, request.receive, request._send) as (read_stream, write_stream):
            await tandem.server.run(read_stream, write_stream, tandem.initialization_options())
        return Response()

    async def handle_ws(websocket: WebSocket) -> None:
        refusal = await guard.validate_request(websocket)  # type: ignore[arg-type]
        if refusal is not None:
            await websocket.close(code=CLOSE_POLICY_VIOLATION, reason=bytes(refusal.body).decode())
            return
        await serve_websocket(tandem, websocket)

    async def health(request: Request) -> Response:
        refusal = await guard.validate_request(request)
        if refusal is not None:
            return refusal
        status = tandem.status()
        report: dict[str, Any] = {}
        for service in status["services"].values():
            report.update(service)  # the catalog's health is the seed's shape, at the top level
        report.update(
            {
                "status": status["status"],
                "version": status["version"],
                "uptime_s": status["uptime_s"],
                "toolsets": sorted(status["toolsets"]),
                "sessions": status["sessions"],
                "sessions_by_transport": status["sessions_by_transport"],
                "tasks": status["tasks"],
            }
        )
        return JSONResponse(report)

    async def metrics(request: Request) -> Response:
        refusal = await guard.validate_request(request)
        if refusal is not None:
            return refusal
        wants_text = request.query_params.get("format") == "prometheus" or (
            "text/plain" in request.headers.get("accept", "") and "json" not in request.headers.get("accept", "")
        )
        if wants_text:
            return Response(prometheus_text(tandem), media_type=PROMETHEUS_TYPE)
        return JSONResponse(metrics_json(tandem))

    async def rpc(request: Request) -> Response:
        refusal = await guard.validate_request(request)
        if refusal is not None:
            return refusal
        return await api.handle(request)

    async def reindex(request: Request) -> Response:
        refusal = await guard.validate_request(request)
        if refusal is not None:
            return refusal
        if "reindex" not in tandem.registry.rpc_methods:
            return JSONResponse({"error": "no toolset served here re-indexes"}, status_code=404)
        answer = await api.call("reindex", {}, request)
        if "error" in answer:
            return JSONResponse(answer["error"], status_code=500)
        return JSONResponse(answer["result"])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            tandem.lifespan_state = await stack.enter_async_context(tandem.server.lifespan(tandem.server))
            for manager in managers:
                await stack.enter_async_context(manager.run())
            yield

    rest = Starlette(
        routes=[
            Route("/sse", endpoint=handle_sse, methods=["GET"]),
            Mount("/messages/", app=sse.handle_post_message),
            WebSocketRoute("/ws", endpoint=handle_ws),
            Route("/health", endpoint=health, methods=["GET"]),
            Route("/metrics", endpoint=metrics, methods=["GET"]),
            Route("/", endpoint=rpc, methods=["POST"]),
            Route("/reindex", endpoint=reindex, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    return TandemApp(tandem, mcp_endpoint, rest)


class TandemApp:
    """The ASGI app: /mcp straight to its endpoint, everything else (and the lifespan) through Starlette.

    /mcp is the hot path, and Starlette's router and its two exception middlewares cost about a third of a small
    call there; the endpoint answers every error itself.
    """

    def __init__(self, tandem: TandemServer, mcp: ASGIApp, rest: Starlette) -> None:
        self.tandem = tandem
        self.mcp = mcp
        self.rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mcp":
            await self.mcp(scope, receive, send)
        else:
            await self.rest(scope, receive, send)


class ServeError(Exception):
    """The HTTP server could not start (the port is taken, the address is not this machine's)."""


async def serve_http(tandem: TandemServer, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``build_app(tandem)`` under uvicorn until stopped; ``on_ready`` gets the base URL once bound."""
    settings = tandem.settings
    config = uvicorn.Config(
        build_app(tandem),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        ws_max_size=settings.max_body_bytes,
        lifespan="on",
        server_header=False,
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await anyio.sleep(0.01)
        sock = server.servers[0].sockets[0].getsockname()
        host = f"[{sock[0]}]" if ":" in sock[0] else sock[0]
        if on_ready is not None:
            on_ready(f"http://{host}:{sock[1]}")

    failure: str | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn's way to say it could not start (it has logged the cause)
            cause = exc.__context__
            failure = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause or "see the log")
        finally:
            tg.cancel_scope.cancel()
    if failure is not None:
        raise ServeError(f"cannot listen on {settings.host}:{settings.port}: {failure}")
