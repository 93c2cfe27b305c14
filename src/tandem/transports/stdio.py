"""stdio: one client, newline-delimited JSON-RPC on stdin/stdout (what Claude Desktop and Claude Code spawn)."""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from tandem.server import TandemServer
from tandem.server.sessions import current_transport


async def serve_stdio(tandem: TandemServer) -> None:
    """Serve until stdin closes. While serving, stray writes to fd 1 go to stderr, never onto the wire."""
    current_transport.set("stdio")
    async with stdio_server() as (read_stream, write_stream):
        await tandem.server.run(read_stream, write_stream, tandem.initialization_options())
