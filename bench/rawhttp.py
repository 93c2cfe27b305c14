"""A minimal HTTP/1.1 keep-alive client on asyncio streams, and an SSE event parser.

Just enough HTTP for the benchmark (Content-Length or chunked bodies, no trailers, no redirects), so that the load
generator costs a few microseconds per request rather than the hundreds a full client costs.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

BODY_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class HttpConnection:
    """One keep-alive connection; requests on it are sequential."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=BODY_LIMIT)

    async def send(self, method: str, target: str, headers: str, body: bytes = b"") -> None:
        """Write one request; ``headers`` is a block of ``Name: value\\r\\n`` lines (Host and length are added)."""
        assert self._writer is not None
        length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}{length}\r\n"
        self._writer.write(head.encode("latin-1") + body)
        await self._writer.drain()

    async def read_head(self) -> tuple[int, dict[str, str]]:
        assert self._reader is not None
        head = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head[:-4].split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line[9:12]), headers

    async def read_chunk(self) -> bytes | None:
        """The next chunk of a chunked body, or ``None`` after the last one."""
        assert self._reader is not None
        size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await self._reader.readuntil(b"\r\n")
            return None
        return (await self._reader.readexactly(size + 2))[:-2]

    async def read_response(self) -> Response:
        status, headers = await self.read_head()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while (chunk := await self.read_chunk()) is not None:
                chunks.append(chunk)
            body = b"".join(chunks)
        else:
            assert self._reader is not None
            body = await self._reader.readexactly(int(headers.get("content-length", "0")))
        return Response(status, headers, body)

    async def request(self, method: str, target: str, headers: str, body: bytes = b"") -> Response:
        await self.send(method, target, headers, body)
        return await self.read_response()

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class SseParser:
    """Splits a Server-Sent Events byte stream into the data of each event; events without data are skipped."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        *events, self._buffer = (self._buffer + data).replace(b"\r\n", b"\n").split(b"\n\n")
        payloads = []
        for event in events:
            lines = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
            if any(lines):
                payloads.append(b"\n".join(lines))
        return payloads
