"""The ``docker_socket`` backend: each command in a fresh container, through the Docker Engine API on its socket.

The container gets the workspace mounted (read-only if configured), runs as this user's uid and gid (files it
writes belong to the user, not root), has no network unless configured, CPU, memory and process limits, every
capability dropped and ``no-new-privileges``. Output streams from the container's log as it runs (the Engine's
multiplexed stream format); when time is up the container is killed; it is removed afterwards whatever happened.
The policy is judged here by program name, as for any machine whose programs Tandem cannot see. The image must
already be on the Docker host: Tandem does not pull images.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
import struct
import time
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2 as httpx

from tandem.core.backends import CommandRequest, DockerSocketSettings
from tandem.core.command_policy import CommandPolicy, check_remote_command, check_shell, scrubbed_environment
from tandem.core.commands import CommandFailed, CommandResult, OutputCallback, StreamCapture
from tandem.core.errors import ToolError

API = "/v1.43"
"""The Engine API version spoken (Docker 24 and newer)."""
PIDS_LIMIT = 1024
_STREAMS: dict[int, Literal["stdout", "stderr"]] = {1: "stdout", 2: "stderr"}


class DockerSocketBackend:
    """Runs each command in a new container on the configured Docker Engine."""

    name = "docker_socket"

    def __init__(self, settings: DockerSocketSettings, workspace: Path, policy: CommandPolicy) -> None:
        self.settings = settings
        self.workspace = workspace
        self.policy = policy

    def container_spec(self, request: CommandRequest) -> dict[str, Any]:
        """The ``POST /containers/create`` body for ``request``; ``CommandRefused`` if the policy says no."""
        settings, policy = self.settings, self.policy
        if request.stdin is not None:
            raise ToolError("the docker_socket backend does not pass stdin to commands; write the input to a file")
        mount = posixpath.normpath(settings.workspace_mount)
        cwd = posixpath.normpath(posixpath.join(mount, request.cwd or "."))
        if cwd != mount and not cwd.startswith(mount + "/"):
            raise ToolError(f"the working directory {request.cwd!r} is outside the workspace")
        if request.shell:
            check_shell(policy, request.command or "")
            command = ["bash", "-c", request.command or ""]
        else:
            command = check_remote_command(policy, request.argv).argv
        env = scrubbed_environment(policy, {}, request.env)
        host_config: dict[str, Any] = {
            "Binds": [f"{self.workspace}:{mount}:{'ro' if settings.read_only else 'rw'}"],
            "NetworkMode": "bridge" if settings.network else "none",
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "PidsLimit": PIDS_LIMIT,
        }
        if settings.cpus is not None:
            host_config["NanoCpus"] = int(settings.cpus * 1e9)
        if settings.memory_mb is not None:
            host_config["Memory"] = settings.memory_mb * 1024 * 1024
        return {
            "Image": settings.image,
            "Cmd": command,
            "WorkingDir": cwd,
            "Env": [f"{k}={v}" for k, v in env.items()],
            "User": f"{os.getuid()}:{os.getgid()}",
            "NetworkDisabled": not settings.network,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": False,
            "Labels": {"tandem": "command"},
            "HostConfig": host_config,
        }

    async def run(self, request: CommandRequest, on_output: OutputCallback | None = None) -> CommandResult:
        spec = self.container_spec(request)
        policy = self.policy
        limit = policy.timeout_s if request.timeout_s is None else min(request.timeout_s, policy.max_timeout_s)
        out, err = StreamCapture(policy.max_output_bytes), StreamCapture(policy.max_output_bytes)
        started = time.monotonic()
        transport = httpx.AsyncHTTPTransport(uds=str(self.settings.socket))
        name = f"tandem-{secrets.token_hex(6)}"
        timed_out = flooded = False
        status: int | None = None
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://docker", timeout=30) as docker:
                created = await docker.post(f"{API}/containers/create", params={"name": name}, json=spec)
                if created.status_code == 404:
                    raise ToolError(f"the image {self.settings.image!r} is not on the Docker host; pull it first")
                _expect(created, 201, "create the container")
                container = created.json()["Id"]
                try:
                    _expect(await docker.post(f"{API}/containers/{container}/start"), 204, "start the container")
                    log_ended = anyio.Event()
                    async with anyio.create_task_group() as tg:

                        async def follow() -> None:
                            params = {"follow": "1", "stdout": "1", "stderr": "1"}
                            try:
                                async with docker.stream(
                                    "GET", f"{API}/containers/{container}/logs", params=params, timeout=None
                                ) as logs:
                                    await read(logs)
                            finally:
                                log_ended.set()

                        async def read(logs: httpx.Response) -> None:
                            nonlocal flooded
                            async for stream, payload in _frames(logs.aiter_bytes()):
                                (out if stream == "stdout" else err).add(payload)
                                text = payload.decode("utf-8", errors="replace")
                                if on_output is not None:
                                    await on_output(stream, text)
                                if out.total + err.total > policy.kill_after_output_bytes and not flooded:
                                    flooded = True
                                    await docker.post(f"{API}/containers/{container}/kill")

                        tg.start_soon(follow)
                        with anyio.move_on_after(limit) as deadline:
                            waited = await docker.post(
                                f"{API}/containers/{container}/wait", params={"condition": "not-running"}, timeout=None
                            )
                            _expect(waited, 200, "wait for the container")
                            status = int(waited.json().get("StatusCode", -1))
                        if deadline.cancelled_caught:
                            timed_out = True
                            await docker.post(f"{API}/containers/{container}/kill")
                            waited = await docker.post(
                                f"{API}/containers/{container}/wait", params={"condition": "not-running"}
                            )
                            status = int(waited.json().get("StatusCode", -1)) if waited.status_code == 200 else None
                        with anyio.move_on_after(2):
                            await log_ended.wait()
                        tg.cancel_scope.cancel()
                finally:
                    with anyio.CancelScope(shield=True), contextlib.suppress(httpx.HTTPError):
                        await docker.delete(f"{API}/containers/{container}", params={"force": "1"})
        except httpx.HTTPError as exc:
            raise CommandFailed(f"the Docker Engine at {self.settings.socket} is not reachable: {exc}") from None
        return CommandResult(
            argv=spec["Cmd"],
            exit_code=status,
            stdout=out.text(),
            stderr=err.text(),
            duration_s=round(time.monotonic() - started, 3),
            timed_out=timed_out,
            output_limit_hit=flooded,
            stdout_bytes=out.total,
            stderr_bytes=err.total,
        )


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise CommandFailed(f"Docker could not {what}: {message[:500]}")


async def _frames(chunks: Any) -> Any:
    """Split the Engine's multiplexed log stream: an 8-byte header (stream, 0, 0, 0, big-endian size), then data."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= 8:
            kind, size = struct.unpack(">BxxxL", buffer[:8])
            if len(buffer) < 8 + size:
                break
            payload, buffer = buffer[8 : 8 + size], buffer[8 + size :]
            if kind in _STREAMS:
                yield _STREAMS[kind], payload
