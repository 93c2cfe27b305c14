"""JSON-RPC framing shared by the stream transports (stdio, WebSocket): parse a frame, answer a malformed one."""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage
from pydantic import ValidationError


def error_frame(request_id: str | int | None, code: int, message: str) -> SessionMessage:
    """A JSON-RPC error response, ready for a transport's write stream."""
    return SessionMessage(
        types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))
    )


TOO_LARGE = "a message over the size limit (max_body_bytes) was dropped"
"""What a stream transport's reader hands on, as a JSON string, in place of a message over the size limit."""


def malformed_reply(exc: Exception, request_id: str | int | None = None) -> SessionMessage:
    """The JSON-RPC error for a frame that failed to parse: -32700 for bad JSON, -32600 for a wrong shape or a
    message dropped for its size."""
    if isinstance(exc, ValidationError) and all(e.get("input") == TOO_LARGE for e in exc.errors()):
        return error_frame(None, types.INVALID_REQUEST, f"Invalid Request: {TOO_LARGE}")
    invalid_json = not isinstance(exc, ValidationError) or any(e["type"] == "json_invalid" for e in exc.errors())
    if invalid_json:
        return error_frame(None, types.PARSE_ERROR, "Parse error: the message is not valid JSON")
    return error_frame(request_id, types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")


def parse_frame(text: str | bytes) -> tuple[SessionMessage | None, SessionMessage | None]:
    """(the message, None) for a good frame; (None, the error reply) for a malformed one."""
    try:
        raw: Any = json.loads(text)
    except ValueError as exc:
        return None, malformed_reply(exc)
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_python(raw, by_name=False)), None
    except ValidationError as exc:
        request_id = raw.get("id") if isinstance(raw, dict) else None
        return None, malformed_reply(exc, request_id if isinstance(request_id, str | int) else None)


async def answer_malformed(
    source: anyio.abc.ObjectReceiveStream[SessionMessage | Exception],
    sink: anyio.abc.ObjectSendStream[SessionMessage | Exception],
    replies: anyio.abc.ObjectSendStream[SessionMessage],
) -> None:
    """Forward good messages from ``source`` to ``sink``; answer each parse failure on ``replies`` instead.

    The SDK's stdio reader hands a failed line on as an exception and the server drops it; JSON-RPC 2.0 wants an
    error response, and a client debugging its framing deserves one.
    """
    async with sink:
        async for item in source:
            if isinstance(item, Exception):
                await replies.send(malformed_reply(item))
            else:
                await sink.send(item)
