"""The ``ssh_remote`` backend: commands run on another machine over SSH (asyncssh), in its copy of the workspace.

The policy is judged here, by program name (``check_remote_command``): nothing here knows what is installed there.
The command runs as ``cd DIR && exec timeout -k 2 T env [VAR=...] -- PROGRAM ARGS`` with every word quoted, so the
remote shell only ever sees one command; ``timeout`` there kills the command's process group when its time is up,
and the connection is closed if the machine does not answer in time either. Output is capped like the native
runner's. The host key must be in the known-hosts file: an unknown host is refused, never trusted on first use.
"""

from __future__ import annotations

import posixpath
import shlex
import signal
import time
from pathlib import Path
from typing import Literal

import anyio
import asyncssh

from tandem.core.backends import CommandRequest, SshRemoteSettings
from tandem.core.command_policy import CommandPolicy, check_remote_command, check_shell, scrubbed_environment
from tandem.core.commands import CommandFailed, CommandResult, OutputCallback, StreamCapture
from tandem.core.errors import ToolError

KILL_AFTER_S = 2
GRACE_S = 10.0
"""How long past the command's limit the connection is kept before it is closed."""


class SshRemoteBackend:
    """Runs commands on the configured machine over SSH."""

    name = "ssh_remote"

    def __init__(self, settings: SshRemoteSettings, workspace: Path, policy: CommandPolicy) -> None:
        self.settings = settings
        self.workspace = workspace
        self.policy = policy

    def command_line(self, request: CommandRequest) -> tuple[str, float]:
        """The one remote shell command for ``request`` (every word quoted) and its time limit; ``CommandRefused``
        if the policy says no."""
        policy = self.policy
        root = posixpath.normpath(self.settings.remote_workspace)
        if not root.startswith("/"):
            raise ToolError("[backends.ssh_remote] remote_workspace must be an absolute path")
        cwd = posixpath.normpath(posixpath.join(root, request.cwd or "."))
        if cwd != root and not cwd.startswith(root + "/"):
            raise ToolError(f"the working directory {request.cwd!r} is outside the workspace")
        extra = scrubbed_environment(policy, {}, request.env)
        if request.shell:
            check_shell(policy, request.command or "")
            words = ["bash", "-c", request.command or ""]
        else:
            words = check_remote_command(policy, request.argv).argv
        limit = policy.timeout_s if request.timeout_s is None else min(request.timeout_s, policy.max_timeout_s)
        seconds = max(1, round(limit))
        if "=" in words[0] or words[0].startswith("-"):
            raise ToolError(f"{words[0]!r} is not a program name")
        run = ["timeout", "-k", str(KILL_AFTER_S), str(seconds), "env", "--", *(f"{k}={v}" for k, v in extra.items())]
        return f"cd {shlex.quote(cwd)} && exec {shlex.join([*run, *words])}", limit

    async def run(self, request: CommandRequest, on_output: OutputCallback | None = None) -> CommandResult:
        line, limit = self.command_line(request)
        settings = self.settings
        cap = self.policy.max_output_bytes
        out, err = StreamCapture(cap), StreamCapture(cap)
        started = time.monotonic()
        flooded = False
        try:
            async with await self._connect() as connection:
                stdin = asyncssh.DEVNULL if request.stdin is None else asyncssh.PIPE
                process = await connection.create_process(line, stdin=stdin, encoding=None)
                async with anyio.create_task_group() as tg:

                    async def pump(
                        reader: asyncssh.SSHReader[bytes], capture: StreamCapture, name: Literal["stdout", "stderr"]
                    ) -> None:
                        nonlocal flooded
                        while chunk := await reader.read(65536):
                            capture.add(chunk)
                            text = chunk.decode("utf-8", errors="replace")
                            if on_output is not None and await on_output(name, text):
                                process.close()
                            if out.total + err.total > self.policy.kill_after_output_bytes:
                                flooded = True
                                process.close()

                    tg.start_soon(pump, process.stdout, out, "stdout")
                    tg.start_soon(pump, process.stderr, err, "stderr")
                    if request.stdin is not None:
                        process.stdin.write(request.stdin.encode())
                        process.stdin.write_eof()
                    with anyio.move_on_after(limit + KILL_AFTER_S + GRACE_S) as deadline:
                        completed = await process.wait(check=False)
                    if deadline.cancelled_caught:
                        process.close()
                        tg.cancel_scope.cancel()
                        completed = None
        except (OSError, asyncssh.Error) as exc:
            raise CommandFailed(f"could not run the command on {settings.host}: {exc}") from None
        status = completed.exit_status if completed is not None else None
        if completed is not None and completed.exit_signal is not None:
            name = completed.exit_signal[0]
            status = -getattr(signal.Signals, f"SIG{name}", signal.SIGKILL).value
        timed_out = completed is None or status == 124 or (status == 137 and time.monotonic() - started >= limit)
        return CommandResult(
            argv=request.argv or ["bash", "-c", request.command or ""],
            exit_code=status,
            stdout=out.text(),
            stderr=err.text(),
            duration_s=round(time.monotonic() - started, 3),
            timed_out=timed_out,
            output_limit_hit=flooded,
            stdout_bytes=out.total,
            stderr_bytes=err.total,
        )

    async def _connect(self) -> asyncssh.SSHClientConnection:
        settings = self.settings
        known_hosts = str(settings.known_hosts.expanduser()) if settings.known_hosts else ()
        options: dict[str, object] = {
            "port": settings.port,
            "username": settings.username,
            "connect_timeout": settings.connect_timeout_s,
        }
        if settings.key_file is not None:
            options["client_keys"] = [str(settings.key_file.expanduser())]
        if known_hosts:
            options["known_hosts"] = known_hosts
        return await asyncssh.connect(settings.host, **options)  # type: ignore[arg-type]
