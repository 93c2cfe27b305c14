"""stdio: one client, newline-delimited JSON-RPC on stdin/stdout (what Claude Desktop and Claude Code spawn).

The SDK's ``stdio_server`` reads a line of any length: a client (or whatever writes to the pipe) sending an endless
line grows the server without bound. Tandem reads stdin itself, a line at a time with the same cap as an HTTP body
or a WebSocket message (``max_body_bytes``): the rest of a longer line is read and dropped, and the line is answered
with ``-32600``. As the SDK does for the stdin it reads, fd 0 is pointed at the null device while serving (a tool or
a child process reading stdin reads nothing, never the protocol) and given back afterwards. On Windows, where the
standard handles would need rebinding too, the SDK reads stdin as it does by default.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import BinaryIO

import anyio
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

from tandem.server import TandemServer
from tandem.server.sessions import current_transport
from tandem.transports.framing import TOO_LARGE, answer_malformed

_log = logging.getLogger(__name__)

_DROPPED = json.dumps(TOO_LARGE)
"""What the reader hands on in place of an over-long line: valid JSON that is no JSON-RPC message, answered with
-32600 Invalid Request (``framing.malformed_reply``)."""
_DRAIN = 1024 * 1024


class BoundedLines:
    """The lines of a binary stream, each at most ``limit`` bytes before its newline, as text (invalid UTF-8
    replaced, as the SDK's reader does); an over-long line is read to its end in pieces, dropped, and stands as
    ``_DROPPED``. Iterated asynchronously: each line is read in a worker thread, which a cancelled server leaves
    blocked on the stream rather than waiting for it."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    def __aiter__(self) -> BoundedLines:
        return self

    async def __anext__(self) -> str:
        line = await anyio.to_thread.run_sync(self.read_line, abandon_on_cancel=True)
        if line is None:
            raise StopAsyncIteration
        return line

    def read_line(self) -> str | None:
        """The next line (``None`` at the end of the stream)."""
        data = self._stream.readline(self._limit + 1)
        if not data:
            return None
        if len(data) <= self._limit or data.endswith(b"\n"):
            return data.decode("utf-8", "replace")
        dropped = len(data)
        while not data.endswith(b"\n"):
            data = self._stream.readline(_DRAIN)
            if not data:
                break
            dropped += len(data)
        _log.warning("stdin: dropped a line of %d bytes (max_body_bytes is %d)", dropped, self._limit)
        return _DROPPED


@contextlib.contextmanager
def _claimed_stdin() -> Iterator[BinaryIO | None]:
    """The protocol's input on a descriptor of Tandem's own, with fd 0 pointed at the null device meanwhile;
    ``None`` where stdin cannot be claimed so (Windows, or no fd 0 behind ``sys.stdin``): the SDK reads it then,
    lines of any length. The private descriptor is never closed (one per stdio server, which a process runs once):
    a reader thread may still be blocked on it after the server stops, and what it had read ahead is not given
    back to fd 0."""
    if sys.platform == "win32" or not _backed_by_fd_0():
        yield None
        return
    import fcntl

    try:
        # Above 2 (were fd 1 or 2 closed, os.dup could return one of them) and close-on-exec: no child process
        # gets the protocol's pipe.
        private = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
        null = os.open(os.devnull, os.O_RDONLY)
    except OSError:
        yield None
        return
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    try:
        yield os.fdopen(private, "rb", closefd=False)
    finally:
        os.dup2(private, 0)


def _backed_by_fd_0() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.fileno() == 0
    except (AttributeError, OSError, ValueError):
        return False


async def serve_stdio(tandem: TandemServer) -> None:
    """Serve until stdin closes. While serving, stray writes to fd 1 go to stderr, never onto the wire."""
    current_transport.set("stdio")
    with _claimed_stdin() as stdin:
        lines = None if stdin is None else BoundedLines(stdin, tandem.settings.max_body_bytes)
        async with stdio_server(stdin=lines) as (read_stream, write_stream):  # type: ignore[arg-type]
            checked_send, checked_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
            async with anyio.create_task_group() as tg:
                tg.start_soon(answer_malformed, read_stream, checked_send, write_stream)
                await tandem.server.run(checked_recv, write_stream, tandem.initialization_options())
                tg.cancel_scope.cancel()
