"""The stateless JSON fast path: one JSON-RPC request per POST, answered in-line.

The SDK serves a stateless POST by building a transport, a stream pair, a dispatcher and a task for it. For the
common case (a well-formed single request that wants a JSON answer) none of that is needed: the request goes
straight to the SDK's own per-request kernel (``ServerRunner``), so validation, middleware (our interceptor chain),
handlers and serialization are exactly the SDK's. Anything unusual (a notification, a batch, bad JSON, a missing
Accept type, a 2026-07-28 request) is handed to the SDK's transport, which owns those answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.runner import ServerRunner, aclose_shielded
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from tandem.server import TandemServer

logger = logging.getLogger("tandem.transports.http")

DEFAULT_VERSION = "2025-03-26"
"""What a POST without ``MCP-Protocol-Version`` speaks (the spec's fallback, as the SDK assumes)."""


@dataclass
class _Exchange:
    """The SDK's ``DispatchContext`` for one POST: no back-channel, and nowhere to put notifications."""

    transport: TransportContext
    request_id: types.RequestId
    message_metadata: ServerMessageMetadata
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = False

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        logger.debug("dropped %s: a JSON answer has no room for notifications", method)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None


def wants_fast_path(scope: Scope, body: bytes) -> dict[str, Any] | None:
    """The parsed request when this POST can take the fast path, else ``None``."""
    accept = version = content_type = b""
    for name, value in scope["headers"]:
        if name == b"accept":
            accept = value
        elif name == b"mcp-protocol-version":
            version = value
        elif name == b"content-type":
            content_type = value
    if b"application/json" not in accept or b"text/event-stream" not in accept:
        return None
    if not content_type.startswith(b"application/json"):
        return None
    if version and version.decode("latin-1") not in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    try:
        message = json.loads(body)
    except ValueError:
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


async def answer(tandem: TandemServer, message: dict[str, Any], scope: Scope, receive: Receive, send: Send) -> None:
    """Run one request through the SDK's kernel and write its JSON-RPC answer."""
    request = Request(scope, receive)
    version = request.headers.get("mcp-protocol-version", DEFAULT_VERSION)
    exchange = _Exchange(
        transport=TransportContext(kind="streamable-http", can_send_request=False, headers=request.headers),
        request_id=message["id"],
        message_metadata=ServerMessageMetadata(request_context=request, can_send_request=False),
    )
    connection = Connection.from_envelope(version, None, None)
    runner = ServerRunner(tandem.server, connection, tandem.lifespan_state)
    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
    try:
        reply["result"] = await runner.on_request(exchange, message["method"], message.get("params"))
    except MCPError as exc:
        reply["error"] = exc.error.model_dump(mode="json", exclude_none=True)
    except ValidationError:
        reply["error"] = {"code": types.INVALID_PARAMS, "message": "Invalid request parameters"}
    except Exception:
        logger.exception("request %s failed", message["method"])
        reply["error"] = {"code": types.INTERNAL_ERROR, "message": "Internal error"}
    finally:
        await aclose_shielded(connection)
    payload = json.dumps(reply, separators=(",", ":"), ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
