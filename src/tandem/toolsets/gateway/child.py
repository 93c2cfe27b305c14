"""A stdio MCP server run as a child process that the gateway owns.

The SDK's ``stdio_client`` keeps its process to itself; the gateway must know the child's pid (to report it), see
it exit (to restart it, and to fail the calls in flight at once rather than when a leftover grandchild lets go of
the pipe), send its stderr to the log, and kill its whole process group. So the pipes are bridged here, to the same
streams the SDK's ``Client`` drives.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import PIPE

import anyio
import mcp_types as types
from anyio.abc import ObjectReceiveStream, ObjectSendStream, Process
from anyio.streams.text import TextReceiveStream
from mcp.shared.message import SessionMessage

from tandem.core.commands import kill_group

logger = logging.getLogger("tandem.gateway")

EXIT_POLL_S = 0.05
"""How often the child's exit is looked for (``Process.wait`` would also wait for every pipe to close)."""
STOP_GRACE_S = 2.0
"""How long the child has to exit after its stdin closes, and again after SIGTERM, before SIGKILL."""
STDERR_LINES = 20
"""How many of the child's last stderr lines are kept to explain a failure."""


Streams = tuple[ObjectReceiveStream[SessionMessage | Exception], ObjectSendStream[SessionMessage]]


@dataclass
class Child:
    """What is known of the running child: its pid, whether it has exited and how, its last stderr lines."""

    name: str
    pid: int | None = None
    exit_code: int | None = None
    exited: anyio.Event = field(default_factory=anyio.Event)
    stderr: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=STDERR_LINES))
    process: Process | None = None

    @property
    def alive(self) -> bool:
        """Whether the process runs; ahead of ``exited``, which waits for the next poll."""
        return self.process is not None and self.process.returncode is None and not self.exited.is_set()

    def describe_exit(self) -> str:
        """How the child ended, with its last stderr line when it left one."""
        code = self.exit_code
        if code is None:
            how = "is gone"
        elif code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        # A process that exited by itself usually said why on its last line; a killed one was cut off mid-work.
        last = next((line for line in reversed(self.stderr) if line.strip()), None) if code and code > 0 else None
        return f"its process {how}" + (f" (last stderr line: {last[:300]})" if last else "")


@contextlib.asynccontextmanager
async def child_process(child: Child, argv: list[str], *, cwd: Path, env: dict[str, str]) -> AsyncIterator[Streams]:
    """Start ``argv`` in its own process group and yield the (read, write) streams of an MCP client transport.

    The read stream ends as soon as the child exits; on leaving, the child's stdin is closed and its process group
    gets SIGTERM, then SIGKILL.
    """
    try:
        process = await anyio.open_process(
            argv, stdin=PIPE, stdout=PIPE, stderr=PIPE, cwd=cwd, env=env, start_new_session=True
        )
    except OSError as exc:
        raise ConnectionError(f"could not start {argv[0]!r}: {exc.strerror or exc}") from None
    child.pid, child.process = process.pid, process
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    reading = anyio.CancelScope()
    closed_by_child = anyio.Event()

    async def pump_stdout() -> None:
        assert process.stdout is not None
        with reading:
            async with read_writer:
                buffer = ""
                with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    async for chunk in TextReceiveStream(process.stdout, errors="replace"):
                        *lines, buffer = (buffer + chunk).split("\n")
                        for line in lines:
                            if line.strip():
                                await read_writer.send(_parse(line))
                    closed_by_child.set()

    async def pump_stdin() -> None:
        assert process.stdin is not None
        async with write_reader:
            try:
                async for message in write_reader:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await process.stdin.send(data.encode())
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                reading.cancel()  # the child stopped reading: end the session rather than leave a call hanging

    async def pump_stderr() -> None:
        assert process.stderr is not None
        with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            buffer = ""
            async for chunk in TextReceiveStream(process.stderr, errors="replace"):
                *lines, buffer = (buffer + chunk).split("\n")
                for line in lines:
                    child.stderr.append(line)
                    logger.info("[%s] %s", child.name, line)

    async def watch_exit() -> None:
        await _exited(process, None)
        child.exit_code = process.returncode
        child.exited.set()
        kill_group(process.pid, signal.SIGKILL)  # leftovers (worker processes) that still hold the pipes
        await anyio.sleep(EXIT_POLL_S)  # the last lines of stderr, which explain the exit
        reading.cancel()

    async with anyio.create_task_group() as tg:
        for pump in (pump_stdout, pump_stdin, pump_stderr, watch_exit):
            tg.start_soon(pump)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)
                if closed_by_child.is_set() and not child.exited.is_set():
                    # It closed its end first (it was exiting): its exit code is its own, not our stop's.
                    child.exit_code = process.returncode
                    child.exited.set()
                await write_stream.aclose()
                await read_stream.aclose()
            tg.cancel_scope.cancel()


def _parse(line: str) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        logger.warning("an upstream wrote a line that is not JSON-RPC: %.200s", line)
        return exc


async def _stop(process: Process) -> None:
    """Close stdin (the MCP way to ask a stdio server to stop), then SIGTERM and SIGKILL to its process group."""
    if process.stdin is not None:
        with contextlib.suppress(OSError, anyio.ClosedResourceError, anyio.BrokenResourceError):
            await process.stdin.aclose()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        await _exited(process, STOP_GRACE_S)
        kill_group(process.pid, sig)
    await _exited(process, STOP_GRACE_S)
    with anyio.move_on_after(STOP_GRACE_S), contextlib.suppress(OSError, anyio.ClosedResourceError):
        await process.aclose()


async def _exited(process: Process, timeout_s: float | None) -> None:
    """Wait for the process to exit, at most ``timeout_s``. Polled: ``Process.wait`` also waits for its pipes to
    close, which a leftover grandchild can hold open long after the child itself is gone."""
    with anyio.move_on_after(timeout_s if timeout_s is not None else float("inf")):
        while process.returncode is None:  # noqa: ASYNC110
            await anyio.sleep(EXIT_POLL_S)
