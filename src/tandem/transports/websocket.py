"""WebSocket at /ws: one JSON-RPC message per text frame, subprotocol ``mcp``, full duplex for the whole session."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from tandem.server import TandemServer
from tandem.server.sessions import current_transport

logger = logging.getLogger("tandem.transports.websocket")

SUBPROTOCOL = "mcp"
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY_VIOLATION = 1008


async def serve_websocket(tandem: TandemServer, websocket: WebSocket) -> None:
    """Serve one WebSocket client until either side closes."""
    offered = websocket.scope.get("subprotocols") or []
    if offered and SUBPROTOCOL not in offered:
        # The client speaks something else over this socket; refuse rather than guess.
        await websocket.close(code=CLOSE_PROTOCOL_ERROR, reason=f"subprotocol '{SUBPROTOCOL}' required")
        return
    await websocket.accept(subprotocol=SUBPROTOCOL if offered else None)
    current_transport.set("websocket")

    to_server_send, to_server_recv = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    from_server_send, from_server_recv = anyio.create_memory_object_stream[SessionMessage](16)

    async def receive_frames() -> None:
        async with to_server_send:
            try:
                while True:
                    text = await websocket.receive_text()
                    message = await _parse(text, websocket)
                    if message is not None:
                        await to_server_send.send(SessionMessage(message))
            except (WebSocketDisconnect, RuntimeError):
                # RuntimeError: a binary frame, or the socket already closed under us.
                pass

    async def send_frames() -> None:
        async with from_server_recv:
            async for session_message in from_server_recv:
                payload = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                try:
                    await websocket.send_text(payload)
                except (WebSocketDisconnect, RuntimeError):
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(send_frames)
        tg.start_soon(receive_frames)
        await tandem.server.run(to_server_recv, from_server_send, tandem.initialization_options())
        tg.cancel_scope.cancel()
    await _close_quietly(websocket)


async def _parse(text: str, websocket: WebSocket) -> Any:
    """The JSON-RPC message in ``text``, or ``None`` after answering the client with the JSON-RPC error."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        await _send_error(websocket, None, types.PARSE_ERROR, f"Parse error: {exc}")
        return None
    try:
        return types.jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except ValidationError:
        request_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str | int) else None
        await _send_error(websocket, request_id, types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")
        return None


async def _send_error(websocket: WebSocket, request_id: str | int | None, code: int, message: str) -> None:
    await websocket.send_text(
        json.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})
    )


async def _close_quietly(websocket: WebSocket) -> None:
    with contextlib.suppress(RuntimeError):
        await websocket.close()
