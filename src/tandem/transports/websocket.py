"""WebSocket at /ws: one JSON-RPC message per text frame, subprotocol ``mcp``, full duplex for the whole session."""

from __future__ import annotations

import contextlib
import logging

import anyio
from mcp.shared.message import SessionMessage
from starlette.websockets import WebSocket, WebSocketDisconnect

from tandem.server import TandemServer
from tandem.server.sessions import current_transport
from tandem.transports.framing import parse_frame

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

    async def receive_frames(replies: anyio.abc.ObjectSendStream[SessionMessage]) -> None:
        async with to_server_send, replies:
            while True:
                frame = await websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                # Text frames are the norm; a binary frame holding UTF-8 JSON is taken as well.
                data = frame.get("text") if frame.get("text") is not None else frame.get("bytes", b"")
                message, error = parse_frame(data)
                if error is not None:
                    await replies.send(error)
                elif message is not None:
                    await to_server_send.send(message)

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
        tg.start_soon(receive_frames, from_server_send.clone())
        await tandem.server.run(to_server_recv, from_server_send, tandem.initialization_options())
        tg.cancel_scope.cancel()
    await _close_quietly(websocket)


async def _close_quietly(websocket: WebSocket) -> None:
    # The client may have gone first: closing a closed socket is no error worth a traceback.
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close()
