"""A client transport for Tandem's /ws endpoint, usable anywhere the SDK takes a ``Transport``.

async with Client(websocket_client("ws://127.0.0.1:8765/ws"), mode="legacy") as client: ...
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

logger = logging.getLogger("tandem.client.websocket")


@contextlib.asynccontextmanager
async def websocket_client(
    url: str, *, headers: dict[str, str] | None = None, max_size: int = 16 * 1024 * 1024
) -> AsyncIterator[tuple[anyio.abc.ObjectReceiveStream, anyio.abc.ObjectSendStream]]:
    """Open a WebSocket to ``url`` (subprotocol ``mcp``) and yield the SDK's (read, write) stream pair."""
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](16)
    async with connect(url, subprotocols=["mcp"], additional_headers=headers, max_size=max_size) as ws:  # type: ignore[list-item]

        async def reader() -> None:
            async with read_send:
                try:
                    async for frame in ws:
                        try:
                            message = types.jsonrpc_message_adapter.validate_json(frame, by_name=False)
                        except ValidationError as exc:
                            await read_send.send(exc)
                            continue
                        await read_send.send(SessionMessage(message))
                except ConnectionClosed:
                    pass

        async def writer() -> None:
            async with write_recv:
                async for session_message in write_recv:
                    await ws.send(session_message.message.model_dump_json(by_alias=True, exclude_unset=True))

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            try:
                yield read_recv, write_send
            finally:
                tg.cancel_scope.cancel()
