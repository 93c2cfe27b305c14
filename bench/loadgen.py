"""One MCP client per transport, each calling ``add(a=1, b=2)`` sequentially over its own connection.

Every client speaks the wire directly (raw HTTP/1.1 and SSE from ``rawhttp``, raw JSON lines on stdio; WebSocket
frames through ``websockets``), so its cost per call is small and the same whichever server answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from rawhttp import BODY_LIMIT, HttpConnection, Response, SseParser

PROTOCOL_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
EXPECTED_TEXT = "3"

_ARGUMENTS = {"a": 1, "b": 2}
_MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
_CALL_PARAMS = json.dumps({"name": "add", "arguments": _ARGUMENTS}, separators=(",", ":")).encode()
_MODERN_CALL_PARAMS = json.dumps(
    {"name": "add", "arguments": _ARGUMENTS, "_meta": _MODERN_META}, separators=(",", ":")
).encode()
_INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    }
).encode()
_INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'

_POST_HEADERS = "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
_LEGACY_HEADERS = f"{_POST_HEADERS}MCP-Protocol-Version: {PROTOCOL_VERSION}\r\n"
_MODERN_HEADERS = (
    f"{_POST_HEADERS}MCP-Protocol-Version: {MODERN_VERSION}\r\nMcp-Method: tools/call\r\nMcp-Name: add\r\n"
)


class ReplyError(Exception):
    """The server's answer was not a JSON-RPC reply to the request."""


class Client(Protocol):
    async def open(self) -> None: ...

    async def call(self, request_id: int) -> dict[str, Any]:
        """Send one ``tools/call`` and return the JSON-RPC reply with ``request_id``."""
        ...

    async def close(self) -> None: ...


def call_body(request_id: int, params: bytes = _CALL_PARAMS) -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}' % (request_id, params)


def check(reply: dict[str, Any]) -> str | None:
    """What is wrong with a reply to ``add(1, 2)``, or ``None`` if it is the expected result."""
    result = reply.get("result")
    if not isinstance(result, dict):
        return "error reply: " + json.dumps(reply.get("error", reply))[:300]
    content = result.get("content") or [{}]
    if result.get("isError") or content[0].get("text") != EXPECTED_TEXT:
        return "wrong result: " + json.dumps(result)[:300]
    return None


def _find(payloads: Iterable[bytes], request_id: int) -> dict[str, Any]:
    for payload in payloads:
        message = json.loads(payload)
        if message.get("id") == request_id:
            return message
    raise ReplyError(f"no reply with id {request_id}")


def _http_reply(response: Response, request_id: int) -> dict[str, Any]:
    """The reply in a POST's answer: one JSON document, or one event of an SSE stream."""
    content_type = response.headers.get("content-type", "")
    if response.status != 200 and not content_type.startswith("application/json"):
        raise ReplyError(f"HTTP {response.status}: {response.body[:300]!r}")
    if content_type.startswith("text/event-stream"):
        return _find(SseParser().feed(response.body), request_id)
    return _find([response.body], request_id)


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


class StatelessHttpClient:
    """POST /mcp with no session: the 2025-11-25 protocol, or the 2026-07-28 one (``modern``)."""

    def __init__(self, url: str, *, modern: bool) -> None:
        self._connection = HttpConnection(*_address(url))
        self._headers = _MODERN_HEADERS if modern else _LEGACY_HEADERS
        self._params = _MODERN_CALL_PARAMS if modern else _CALL_PARAMS

    async def open(self) -> None:
        await self._connection.connect()

    async def call(self, request_id: int) -> dict[str, Any]:
        body = call_body(request_id, self._params)
        return _http_reply(await self._connection.request("POST", "/mcp", self._headers, body), request_id)

    async def close(self) -> None:
        await self._connection.close()


class StatefulHttpClient:
    """POST /mcp in a session: initialize, notifications/initialized, then calls naming the session; DELETE at the
    end."""

    def __init__(self, url: str) -> None:
        self._connection = HttpConnection(*_address(url))
        self._session_headers: str | None = None

    async def open(self) -> None:
        await self._connection.connect()
        response = await self._connection.request("POST", "/mcp", _LEGACY_HEADERS, _INITIALIZE)
        _http_reply(response, 0)
        self._session_headers = f"{_LEGACY_HEADERS}Mcp-Session-Id: {response.headers['mcp-session-id']}\r\n"
        response = await self._connection.request("POST", "/mcp", self._session_headers, _INITIALIZED)
        if response.status != 202:
            raise ReplyError(f"notifications/initialized: HTTP {response.status}")

    async def call(self, request_id: int) -> dict[str, Any]:
        assert self._session_headers is not None
        response = await self._connection.request("POST", "/mcp", self._session_headers, call_body(request_id))
        return _http_reply(response, request_id)

    async def close(self) -> None:
        headers, self._session_headers = self._session_headers, None
        if headers is not None:
            # Best effort: a session whose connection broke is ended by the server's idle timeout instead.
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                await self._connection.request("DELETE", "/mcp", headers)
        await self._connection.close()


class LegacySseClient:
    """GET /sse for the replies, POST /messages/?session_id=... for the requests (on a second connection)."""

    def __init__(self, url: str) -> None:
        self._stream = HttpConnection(*_address(url))
        self._post = HttpConnection(*_address(url))
        self._parser = SseParser()
        self._events: deque[bytes] = deque()
        self._endpoint = ""

    async def open(self) -> None:
        self._parser = SseParser()
        self._events.clear()
        await self._stream.connect()
        await self._stream.send("GET", "/sse", "Accept: text/event-stream\r\n")
        status, _ = await self._stream.read_head()
        if status != 200:
            raise ReplyError(f"GET /sse: HTTP {status}")
        self._endpoint = (await self._next_event()).decode()
        await self._post.connect()
        await self._send(_INITIALIZE)
        await self._reply(0)
        await self._send(_INITIALIZED)

    async def call(self, request_id: int) -> dict[str, Any]:
        await self._send(call_body(request_id))
        return await self._reply(request_id)

    async def close(self) -> None:
        await self._post.close()
        await self._stream.close()

    async def _send(self, body: bytes) -> None:
        response = await self._post.request("POST", self._endpoint, "Content-Type: application/json\r\n", body)
        if response.status != 202:
            raise ReplyError(f"POST {self._endpoint}: HTTP {response.status}: {response.body[:300]!r}")

    async def _next_event(self) -> bytes:
        while not self._events:
            chunk = await self._stream.read_chunk()
            if chunk is None:
                raise ReplyError("the SSE stream ended")
            self._events.extend(self._parser.feed(chunk))
        return self._events.popleft()

    async def _reply(self, request_id: int) -> dict[str, Any]:
        while True:
            message = json.loads(await self._next_event())
            if message.get("id") == request_id:
                return message


class WebSocketClient:
    """/ws with subprotocol ``mcp``, one JSON-RPC message per text frame; no compression."""

    def __init__(self, url: str) -> None:
        self._url = "ws" + url.removeprefix("http") + "/ws"
        self._ws: ClientConnection | None = None

    async def open(self) -> None:
        self._ws = await connect(self._url, subprotocols=[Subprotocol("mcp")], compression=None, max_size=BODY_LIMIT)
        await self._ws.send(_INITIALIZE.decode())
        await self._reply(0)
        await self._ws.send(_INITIALIZED.decode())

    async def call(self, request_id: int) -> dict[str, Any]:
        assert self._ws is not None
        await self._ws.send(call_body(request_id).decode())
        return await self._reply(request_id)

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _reply(self, request_id: int) -> dict[str, Any]:
        assert self._ws is not None
        while True:
            message = json.loads(await self._ws.recv())
            if message.get("id") == request_id:
                return message


class StdioClient:
    """Newline-delimited JSON-RPC over a server process's stdin and stdout; the process belongs to the caller."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout

    async def open(self) -> None:
        await self._send(_INITIALIZE)
        await self._reply(0)
        await self._send(_INITIALIZED)

    async def call(self, request_id: int) -> dict[str, Any]:
        await self._send(call_body(request_id))
        return await self._reply(request_id)

    async def close(self) -> None:
        return None

    async def _send(self, message: bytes) -> None:
        self._stdin.write(message + b"\n")
        await self._stdin.drain()

    async def _reply(self, request_id: int) -> dict[str, Any]:
        while line := await self._stdout.readline():
            message = json.loads(line)
            if message.get("id") == request_id:
                return message
        raise ReplyError("the server closed its stdout")


HTTP_CLIENTS: dict[str, Callable[[str], Client]] = {
    "http-stateless-json": lambda url: StatelessHttpClient(url, modern=False),
    "http-2026": lambda url: StatelessHttpClient(url, modern=True),
    "http-stateful": StatefulHttpClient,
    "sse": LegacySseClient,
    "websocket": WebSocketClient,
}
"""Each HTTP-borne transport's client, made from the server's base URL."""
