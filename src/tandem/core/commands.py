"""The command runner: every subprocess Tandem starts, in every toolset, goes through ``CommandRunner.run``.

- argv only (a shell only when the policy allows one and the caller asks for it), the program found by the
  policy (``tandem.core.command_policy``) on the server's own ``PATH``;
- the working directory confined to the workspace; stdin closed unless input is given;
- a time limit, after which the whole process group gets SIGTERM and then SIGKILL; the same on cancellation, and
  leftovers of a finished command are killed too, so a grandchild holding a pipe open cannot hang the call;
- output kept up to a cap per stream (head and tail, with a notice of what was cut), a command flooding output
  past a hard limit stopped;
- the environment scrubbed of secrets; resource limits through ``prlimit`` where it exists (Linux);
- output streamed to a callback as it arrives, for progress notifications.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import DEVNULL, PIPE
from typing import Any, Literal

import anyio
from anyio.abc import ByteReceiveStream, Process

from tandem.core.command_policy import CommandPolicy, check_command, check_shell, scrubbed_environment
from tandem.core.errors import ToolError
from tandem.core.workspace_path import workspace_path

logger = logging.getLogger("tandem.commands")

KILL_GRACE_S = 2.0
"""How long a process group has between SIGTERM and SIGKILL."""
DRAIN_S = 0.5
"""How long output is still read after the command ended and its group was killed."""

OutputCallback = Callable[[Literal["stdout", "stderr"], str], Awaitable[bool | None]]
"""Gets output as it arrives; returning True says "enough": the command is stopped (``stopped_early``)."""


class CommandFailed(ToolError):
    """A command could not be started (not a command that ran and exited non-zero)."""


@dataclass
class StreamCapture:
    """One output stream, kept up to ``limit`` bytes: the first half and the most recent half (or, with
    ``head_only``, the first ``limit`` bytes)."""

    limit: int
    head_only: bool = False
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0
    ended: anyio.Event = field(default_factory=anyio.Event)
    """Set when the stream has ended (or its reader stopped)."""

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = (self.limit if self.head_only else self.limit // 2) - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk and not self.head_only:
            self.tail += chunk
            excess = len(self.tail) - (self.limit - self.limit // 2)
            if excess > 0:
                del self.tail[:excess]

    @property
    def truncated(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        if not self.truncated:
            return head + self.tail.decode("utf-8", errors="replace")
        notice = f"\n[... {self.truncated} bytes of output cut here; {self.total} bytes in all ...]\n"
        return head + notice + self.tail.decode("utf-8", errors="replace")


@dataclass
class CommandResult:
    """What a command did. ``exit_code`` is negative when a signal ended it (``-9``: killed)."""

    argv: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    output_limit_hit: bool = False
    stopped_early: bool = False
    """The output callback said it had enough, and the command was stopped."""
    stdout_bytes: int = 0
    stderr_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def reported(self) -> dict[str, Any]:
        """What a tool's result says of the run (``execute_command``'s, ``run_task``'s): its models' fields."""
        return {
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration_s": self.duration_s,
            "timed_out": self.timed_out,
            "output_limit_hit": self.output_limit_hit,
        }


class CommandRunner:
    """Runs commands for one workspace under one policy."""

    def __init__(self, workspace: Path, policy: CommandPolicy) -> None:
        self.workspace = workspace
        self.policy = policy
        self._prlimit = shutil.which("prlimit")

    async def run_checked(
        self,
        argv: list[str],
        *,
        cwd: str | None = None,
        timeout_s: float | None = None,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run a command a client asked for: the policy judges it first (``CommandRefused`` if it says no)."""
        approved = check_command(self.policy, self.workspace, argv)
        return await self.run(
            approved.argv, cwd=cwd, timeout_s=timeout_s, env=env, stdin=stdin, on_output=on_output, shown=argv
        )

    async def run_shell_checked(
        self,
        command: str,
        *,
        cwd: str | None = None,
        timeout_s: float | None = None,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run a shell command string a client asked for, when the policy allows a shell at all."""
        check_shell(self.policy, command)
        shell = shutil.which("bash") or shutil.which("sh")
        if shell is None:
            raise CommandFailed("no shell (bash or sh) is installed")
        return await self.run(
            [shell, "-c", command], cwd=cwd, timeout_s=timeout_s, env=env, stdin=stdin, on_output=on_output
        )

    async def run(
        self,
        argv: list[str],
        *,
        cwd: str | None = None,
        timeout_s: float | None = None,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        on_output: OutputCallback | None = None,
        shown: list[str] | None = None,
        max_output_bytes: int | None = None,
        keep_head: bool = False,
        drop_env: Callable[[str], bool] | None = None,
    ) -> CommandResult:
        """Run ``argv`` as given (Tandem's own commands; clients' go through ``run_checked``).

        ``max_output_bytes`` overrides the policy's cap per stream; ``keep_head`` keeps the start of the output
        rather than its start and end (for output parsed line by line); ``drop_env`` says which variables of the
        server's own environment the command must not inherit.
        """
        policy = self.policy
        directory = workspace_path(self.workspace, cwd or ".")
        if not directory.is_dir():
            raise CommandFailed(f"the working directory {cwd!r} is not a directory")
        limit = policy.timeout_s if timeout_s is None else min(timeout_s, policy.max_timeout_s)
        inherited = {k: v for k, v in os.environ.items() if drop_env is None or not drop_env(k)}
        environment = scrubbed_environment(policy, inherited, env)
        full = [*self._limits(), *argv]
        logger.debug("run %s in %s (limit %ss)", argv, directory, limit)
        started = time.monotonic()
        try:
            process = await anyio.open_process(
                full,
                stdin=PIPE if stdin is not None else DEVNULL,
                stdout=PIPE,
                stderr=PIPE,
                cwd=directory,
                env=environment,
                start_new_session=True,
            )
        except OSError as exc:
            raise CommandFailed(f"could not start {argv[0]!r}: {exc.strerror or exc}") from None
        cap = max_output_bytes or policy.max_output_bytes
        out, err = StreamCapture(cap, keep_head), StreamCapture(cap, keep_head)
        flood, enough = anyio.Event(), anyio.Event()
        result = CommandResult(argv=shown or argv, exit_code=None, stdout="", stderr="", duration_s=0.0)
        try:
            async with anyio.create_task_group() as tg:
                assert process.stdout is not None and process.stderr is not None
                signals = (flood, enough)
                tg.start_soon(self._pump, process.stdout, out, "stdout", on_output, (out, err), signals)
                tg.start_soon(self._pump, process.stderr, err, "stderr", on_output, (out, err), signals)
                if stdin is not None:
                    tg.start_soon(_feed, process, stdin.encode())
                with anyio.move_on_after(limit) as deadline:
                    async with anyio.create_task_group() as waiters:

                        async def wait_exit() -> None:
                            await process.wait()
                            waiters.cancel_scope.cancel()

                        async def wait_signal(event: anyio.Event) -> None:
                            await event.wait()
                            waiters.cancel_scope.cancel()

                        waiters.start_soon(wait_exit)
                        waiters.start_soon(wait_signal, flood)
                        waiters.start_soon(wait_signal, enough)
                result.timed_out = deadline.cancelled_caught
                result.output_limit_hit = flood.is_set()
                result.stopped_early = enough.is_set()
                if process.returncode is None:
                    await _stop_group(process)
                else:
                    kill_group(process.pid, signal.SIGKILL)  # leftovers that still hold the pipes
                with anyio.move_on_after(DRAIN_S):
                    await out.ended.wait()
                    await err.ended.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    await _stop_group(process, grace_s=0.0)
                await process.aclose()
        result.exit_code = process.returncode
        result.duration_s = round(time.monotonic() - started, 3)
        result.stdout, result.stderr = out.text(), err.text()
        result.stdout_bytes, result.stderr_bytes = out.total, err.total
        return result

    async def _pump(
        self,
        stream: ByteReceiveStream,
        capture: StreamCapture,
        name: Literal["stdout", "stderr"],
        on_output: OutputCallback | None,
        both: tuple[StreamCapture, StreamCapture],
        signals: tuple[anyio.Event, anyio.Event],
    ) -> None:
        flood, enough = signals
        try:
            async for chunk in stream:
                capture.add(chunk)
                if on_output is not None and await on_output(name, chunk.decode("utf-8", errors="replace")):
                    enough.set()
                if sum(c.total for c in both) > self.policy.kill_after_output_bytes:
                    flood.set()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            capture.ended.set()

    def _limits(self) -> list[str]:
        """``prlimit`` options for the policy's resource limits; none where ``prlimit`` is missing."""
        policy = self.policy
        options = []
        if policy.cpu_seconds is not None:
            options.append(f"--cpu={policy.cpu_seconds}")
        if policy.memory_mb is not None:
            options.append(f"--data={policy.memory_mb * 1024 * 1024}")
        if policy.file_size_mb is not None:
            options.append(f"--fsize={policy.file_size_mb * 1024 * 1024}")
        if policy.processes is not None:
            options.append(f"--nproc={policy.processes}")
        if not options or self._prlimit is None:
            return []
        return [self._prlimit, *options, "--"]


async def _feed(process: Process, data: bytes) -> None:
    assert process.stdin is not None
    try:
        await process.stdin.send(data)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the command stopped reading
    finally:
        await process.stdin.aclose()


def tandem_argv(*args: str) -> list[str]:
    """The argv that runs this Tandem again with ``args``: this Python with ``-P``, so that the directory it
    starts in (often a workspace) is not put first on its import path, where a workspace's ``typer.py`` or
    ``pydantic/`` would be imported, and run, instead of Tandem's own dependency."""
    return [sys.executable, "-P", "-m", "tandem", *args]


def installed_program(name: str) -> str | None:
    """A program Tandem's own dependencies install: the one beside this Python (a wheel's script, such as rg or
    just), else the one on PATH; ``None`` if neither."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def kill_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid``; nothing if it is gone already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _stop_group(process: Process, grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM to the command's whole process group, SIGKILL after ``grace_s`` if it is still there."""
    if grace_s > 0:
        kill_group(process.pid, signal.SIGTERM)
        with anyio.move_on_after(grace_s):
            await process.wait()
    kill_group(process.pid, signal.SIGKILL)
    with anyio.move_on_after(KILL_GRACE_S):
        await process.wait()
