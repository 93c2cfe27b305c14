"""stdio: one client, newline-delimited JSON-RPC on stdin/stdout (what Claude Desktop and Claude Code spawn)."""

from __future__ import annotations

import anyio
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

from tandem.server import TandemServer
from tandem.server.sessions import current_transport
from tandem.transports.framing import answer_malformed


async def serve_stdio(tandem: TandemServer) -> None:
    """Serve until stdin closes. While serving, stray writes to fd 1 go to stderr, never onto the wire."""
    current_transport.set("stdio")
    async with stdio_server() as (read_stream, write_stream):
        checked_send, checked_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_malformed, read_stream, checked_send, write_stream)
            await tandem.server.run(checked_recv, write_stream, tandem.initialization_options())
            tg.cancel_scope.cancel()
