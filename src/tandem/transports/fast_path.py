"""The /mcp fast path: a plain single request answered in-line with one JSON document.

The SDK serves each stateless POST by building a transport, a stream pair, a dispatcher and a task for it, and
each 2026-07-28 POST by re-validating its JSON-RPC shape through pydantic models. For the common case (a
well-formed request that wants a JSON answer and cannot produce notifications) none of that is needed. A
``tools/call`` goes to ``TandemServer.call_tool_directly`` (the SDK's surface check, its server middleware with our
interceptor chain, our handler, the 2026-07-28 result envelope); any other method goes to the SDK's own
per-request kernel (``serve_one``). The 2026-07-28 routing checks are the SDK's own functions. Anything else (a
notification, a batch, bad JSON, a header the SDK would refuse, a call that asks for progress or logs) is left to
the SDK's transport, which owns those answers: ``FastPath.plan`` returns ``None``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.runner import modern_error_data, serve_one
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundModernRoute,
    classify_inbound_request,
    find_duplicated_routing_header,
    find_invalid_x_mcp_header,
    validate_mcp_param_headers,
    x_mcp_header_map,
)
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from tandem.server import TandemServer

logger = logging.getLogger("tandem.transports.http")

DEFAULT_VERSION = "2025-03-26"
"""What a POST without ``MCP-Protocol-Version`` speaks (the spec's fallback, as the SDK assumes)."""

_LOG_LEVEL_META = "io.modelcontextprotocol/logLevel"


@dataclass
class _Exchange:
    """The SDK's ``DispatchContext`` for one POST: no back-channel, and nowhere to put notifications."""

    transport: TransportContext
    request_id: types.RequestId
    message_metadata: ServerMessageMetadata
    can_send_request: bool = False
    _cancel_requested: anyio.Event | None = None

    @property
    def cancel_requested(self) -> anyio.Event:
        """Never set here (a hang-up cancels the handler's scope instead); made only for a handler that asks."""
        if self._cancel_requested is None:
            self._cancel_requested = anyio.Event()
        return self._cancel_requested

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        logger.debug("dropped %s: a JSON answer has no room for notifications", method)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Plan:
    """A request the fast path will answer: the decoded body, its protocol version and, if modern, its envelope."""

    message: dict[str, Any]
    version: str
    route: InboundModernRoute | None


def _single_request(body: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
        return None
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return None
    params = message.get("params")
    if params is not None and not isinstance(params, dict):
        return None
    return message


class FastPath:
    """Plans and answers the fast path's requests for one server."""

    def __init__(self, tandem: TandemServer) -> None:
        self.tandem = tandem
        # Tools whose input schema routes arguments into ``Mcp-Param-*`` headers (the SDK's rules for a valid one).
        self._header_tools = frozenset(
            name
            for name, tool in tandem.registry.tools.items()
            if find_invalid_x_mcp_header(tool.input_schema) is None and x_mcp_header_map(tool.input_schema)
        )

    def plan(self, scope: Scope, body: bytes, *, stateless: bool) -> Plan | None:
        """How to answer this POST in-line, or ``None`` to leave it to the SDK's transport."""
        pairs = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        headers = dict(pairs)  # ASGI servers give header names in lower case
        accept = headers.get("accept", "")
        if "application/json" not in accept or "text/event-stream" not in accept:
            return None
        if not headers.get("content-type", "").startswith("application/json"):
            return None
        version = headers.get("mcp-protocol-version", "")
        modern = bool(version) and version not in HANDSHAKE_PROTOCOL_VERSIONS
        if not modern and not stateless:
            return None  # a session's requests belong to the SDK's session transport
        message = _single_request(body)
        if message is None:
            return None
        params = message.get("params") or {}
        meta = params.get("_meta")
        if isinstance(meta, dict) and ("progressToken" in meta or _LOG_LEVEL_META in meta):
            return None  # the answer may carry notifications: an SSE stream
        if not modern:
            return Plan(message, version or DEFAULT_VERSION, None)
        if message["method"] == "subscriptions/listen" or find_duplicated_routing_header(pairs):
            return None
        route = classify_inbound_request(message, headers=headers)
        if not isinstance(route, InboundModernRoute):
            return None
        if message["method"] == "tools/call" and self._param_headers_rejected(scope, params, pairs):
            return None
        return Plan(message, route.protocol_version, route)

    def _param_headers_rejected(self, scope: Scope, params: dict[str, Any], pairs: list[tuple[str, str]]) -> bool:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if not isinstance(name, str) or not isinstance(arguments, dict):
            return True
        if name not in self._header_tools:
            # No header to compare (the SDK accepts any Mcp-Param-* headers then), unless the tool is unknown.
            return name not in self.tandem.registry.tools and any(h.startswith("mcp-param-") for h, _ in pairs)
        schema = self.tandem.registry.tools[name].input_schema
        return validate_mcp_param_headers(schema, arguments, Headers(scope=scope)) is not None


async def answer(tandem: TandemServer, plan: Plan, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve the planned request and write its JSON-RPC answer."""
    request = Request(scope, receive)
    message = plan.message
    exchange = _Exchange(
        transport=TransportContext(kind="streamable-http", can_send_request=False, headers=request.headers),
        request_id=message["id"],
        message_metadata=ServerMessageMetadata(request_context=request, can_send_request=False),
    )
    route = plan.route
    connection = (
        Connection.from_envelope(plan.version, None, None)
        if route is None
        else Connection.from_envelope(route.protocol_version, route.client_info, route.client_capabilities)
    )
    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
    status = 200
    try:
        if message["method"] == "tools/call":
            reply["result"] = await tandem.call_tool_directly(exchange, connection, message.get("params"), request)
        else:
            reply["result"] = await serve_one(
                tandem.server,
                exchange,
                message["method"],
                message.get("params"),
                connection=connection,
                lifespan_state=tandem.lifespan_state,
            )
    except Exception as exc:
        error = modern_error_data(exc)
        reply["error"] = error.model_dump(mode="json", exclude_none=True)
        if route is not None:  # 2026-07-28 maps error codes to HTTP statuses; the handshake era answers 200
            status = ERROR_CODE_HTTP_STATUS.get(error.code, 200)
    payload = json.dumps(reply, separators=(",", ":"), ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
