"""The host agent: a small ``tandem agent`` process on the host that runs commands for a Tandem server that cannot
(one in a container), over a local socket.

The wire is JSON lines. The server sends one request per connection::

    {"type": "run", "token": "...", "argv": [...], "command": null, "shell": false, "cwd": ".",
     "timeout_s": 60, "env": {}, "stdin": null}

and the agent answers with output events as the command runs, then the result (or an error)::

    {"type": "output", "stream": "stdout", "text": "..."}
    {"type": "result", "exit_code": 0, "stdout": "...", "stderr": "...", "duration_s": 0.1, ...}
    {"type": "error", "message": "..."}

The agent judges every command by its **own** policy (the host's ``tandem.toml``), runs it in its own workspace,
and stops it when the server hangs up (the call was cancelled). The socket is created readable and writable by
its owner only; a token, when the agent has one, must match.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from tandem.core.backends import CommandRequest, HostAgentSettings
from tandem.core.commands import CommandResult, CommandRunner, OutputCallback
from tandem.core.errors import ToolError

logger = logging.getLogger("tandem.agent")

MAX_LINE = 64 * 1024 * 1024
"""The longest JSON line either side accepts (a result carries capped output, far below this)."""
TIMEOUT_MARGIN_S = 30.0
"""How much longer than the command's own limit the server waits for the agent's answer."""


class HostAgentBackend:
    """Runs commands through a host agent."""

    name = "host_agent"

    def __init__(self, settings: HostAgentSettings) -> None:
        self.settings = settings

    async def run(self, request: CommandRequest, on_output: OutputCallback | None = None) -> CommandResult:
        message = {"type": "run", "token": self.settings.token, **dataclasses.asdict(request)}
        try:
            stream = await anyio.connect_unix(self.settings.socket)
        except OSError as exc:
            raise ToolError(
                f"the host agent is not reachable ({exc.strerror or exc}); is 'tandem agent' running?"
            ) from None
        limit = (request.timeout_s or 1800.0) + TIMEOUT_MARGIN_S
        async with stream:
            await stream.send(json.dumps(message).encode() + b"\n")
            lines = BufferedByteReceiveStream(stream)
            with anyio.fail_after(limit):
                while True:
                    try:
                        event = json.loads(await lines.receive_until(b"\n", MAX_LINE))
                    except (anyio.IncompleteRead, anyio.EndOfStream):
                        raise ToolError("the host agent hung up before answering") from None
                    if event.get("type") == "output":
                        if on_output is not None:
                            await on_output(event["stream"], event["text"])
                    elif event.get("type") == "result":
                        fields = {f.name for f in dataclasses.fields(CommandResult)}
                        return CommandResult(**{k: v for k, v in event.items() if k in fields})
                    else:
                        raise ToolError(f"the host agent refused: {event.get('message', 'no reason given')}")


async def serve_agent(socket_path: Path, runner: CommandRunner, token: str | None = None) -> None:
    """Listen on ``socket_path`` and run the commands that arrive, under ``runner``'s policy, until cancelled."""
    path = anyio.Path(socket_path)
    if await path.is_socket():
        await path.unlink()  # left behind by an agent that stopped
    elif await path.exists():
        raise ToolError(f"{socket_path} exists and is not a socket; choose another path")
    previous = os.umask(0o177)  # the socket is born owner-only
    try:
        listener = await anyio.create_unix_listener(socket_path)
    finally:
        os.umask(previous)
    logger.warning("host agent listening on %s (workspace %s)", socket_path, runner.workspace)
    async with listener:
        await listener.serve(lambda stream: _serve_one(stream, runner, token))


async def _serve_one(stream: SocketStream, runner: CommandRunner, token: str | None) -> None:
    async with stream:
        lines = BufferedByteReceiveStream(stream)

        async def send(event: dict[str, Any]) -> None:
            await stream.send(json.dumps(event).encode() + b"\n")

        try:
            request = json.loads(await lines.receive_until(b"\n", MAX_LINE))
        except (anyio.IncompleteRead, anyio.EndOfStream, anyio.DelimiterNotFound, ValueError):
            return
        if not isinstance(request, dict) or request.get("type") != "run":
            await send({"type": "error", "message": "expected a 'run' request"})
            return
        if token is not None and not hmac.compare_digest(str(request.get("token") or ""), token):
            await send({"type": "error", "message": "wrong or missing token"})
            return

        async def forward(name: str, text: str) -> bool:
            await send({"type": "output", "stream": name, "text": text})
            return False

        async def hung_up(scope: anyio.CancelScope) -> None:
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                while await stream.receive():
                    pass
            scope.cancel()  # the server hung up: the call was cancelled, so stop the command

        async with anyio.create_task_group() as tg:
            tg.start_soon(hung_up, tg.cancel_scope)
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                try:
                    result = await _run(runner, request, forward)
                except ToolError as exc:
                    await send({"type": "error", "message": str(exc)})
                else:
                    await send({"type": "result", **dataclasses.asdict(result)})
            tg.cancel_scope.cancel()


async def _run(runner: CommandRunner, request: dict[str, Any], forward: OutputCallback) -> CommandResult:
    cwd, timeout_s, env, stdin = (
        request.get("cwd") or ".",
        request.get("timeout_s"),
        request.get("env"),
        request.get("stdin"),
    )
    if request.get("shell"):
        command = str(request.get("command") or "")
        return await runner.run_shell_checked(
            command, cwd=cwd, timeout_s=timeout_s, env=env, stdin=stdin, on_output=forward
        )
    argv = [str(arg) for arg in request.get("argv") or []]
    return await runner.run_checked(argv, cwd=cwd, timeout_s=timeout_s, env=env, stdin=stdin, on_output=forward)
