"""The reference: the SDK's own ``MCPServer`` with the same ``add`` tool as Tandem's ``conformance`` toolset.

    python bench/reference_server.py --mode {stateless,stateful,sse,stdio} [--port 0]

HTTP modes print ``listening on http://127.0.0.1:PORT`` to stderr once bound. The server is left as users get it:
SDK defaults throughout, OpenTelemetry middleware included (a no-op span pair per request with no exporter).
"""

from __future__ import annotations

import argparse
import sys

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette

HOST = "127.0.0.1"

server = MCPServer("reference", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


def build_app(mode: str) -> Starlette:
    if mode == "sse":
        return server.sse_app(host=HOST)
    stateless = mode == "stateless"
    return server.streamable_http_app(stateless_http=stateless, json_response=stateless, host=HOST)


async def serve(mode: str, port: int) -> None:
    uv = uvicorn.Server(uvicorn.Config(build_app(mode), host=HOST, port=port, log_level="warning"))

    async def announce() -> None:
        while not uv.started:
            if uv.should_exit:
                return
            await anyio.sleep(0.01)
        bound_port = uv.servers[0].sockets[0].getsockname()[1]
        print(f"reference ({mode}) listening on http://{HOST}:{bound_port}", file=sys.stderr, flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        await uv.serve()
        tg.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["stateless", "stateful", "sse", "stdio"], required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.mode == "stdio":
        server.run("stdio")
    else:
        anyio.run(serve, args.mode, args.port)


if __name__ == "__main__":
    main()
