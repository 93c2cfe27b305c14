"""One way to open an MCP client per transport, so a test can run the same steps over each."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client

from tandem.client import websocket_client
from tandem.config import load_settings
from tandem.core import Registry
from tandem.server import TandemServer

TRANSPORTS = ["memory", "stdio", "http", "http-stateless", "http-2026", "sse", "websocket"]


@contextlib.asynccontextmanager
async def connect(transport: str, *, stateful_url: str, stateless_url: str, workspace: Path) -> AsyncIterator[Client]:
    """A connected ``mcp.Client`` over ``transport`` to a Tandem serving the server and conformance toolsets."""
    if transport == "memory":
        settings = load_settings(workspace, toolsets=["server", "conformance"], log_requests=False)
        tandem = TandemServer(Registry.from_entry_points(settings.toolsets), settings)
        client = Client(tandem.server, mode="legacy")
    elif transport == "stdio":
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "tandem", "serve", "--toolsets", "server,conformance", "--workspace", str(workspace)],
        )
        client = Client(params, mode="legacy")
    elif transport == "http":
        client = Client(f"{stateful_url}/mcp", mode="legacy")
    elif transport == "http-stateless":
        client = Client(f"{stateless_url}/mcp", mode="legacy")
    elif transport == "http-2026":
        client = Client(f"{stateless_url}/mcp", mode="2026-07-28")
    elif transport == "sse":
        client = Client(sse_client(f"{stateful_url}/sse"), mode="legacy")
    elif transport == "websocket":
        client = Client(websocket_client(stateful_url.replace("http://", "ws://") + "/ws"), mode="legacy")
    else:
        raise ValueError(transport)
    async with client:
        yield client
