"""Execution backends: where a command a client asked for runs, behind one interface.

- ``native``: here, through the command runner, under the policy (the default);
- ``host_agent``: on the host, through a ``tandem agent`` process listening on a local socket, under the agent's
  own policy (for a Tandem server that runs in a container);
- ``ssh_remote``: on another machine over SSH, the policy judged here by program name;
- ``docker_socket``: in a fresh container through the Docker Engine API, with the workspace mounted, CPU and memory
  limits and no network;
- ``privileged``: here, without the allow-list. Only when the settings turn it on, and logged loudly every time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from tandem.core.command_policy import CommandPolicy
from tandem.core.commands import CommandResult, CommandRunner, OutputCallback
from tandem.core.errors import ToolError

logger = logging.getLogger("tandem.backends")


@dataclass
class CommandRequest:
    """One command to run: an argv, or a shell string (``shell``), relative to the workspace root."""

    argv: list[str] = field(default_factory=list)
    command: str | None = None
    shell: bool = False
    cwd: str = "."
    timeout_s: float | None = None
    env: dict[str, str] | None = None
    stdin: str | None = None


class Backend(Protocol):
    name: str

    async def run(self, request: CommandRequest, on_output: OutputCallback | None = None) -> CommandResult: ...


class HostAgentSettings(BaseModel):
    socket: Path = Field(description="The agent's socket (as this server sees it, e.g. mounted into a container).")
    token: str | None = Field(None, description="A shared secret the agent requires, if it was given one.")


class SshRemoteSettings(BaseModel):
    host: str
    port: int = Field(22, ge=1, le=65535)
    username: str
    key_file: Path | None = Field(None, description="Private key; the SSH agent and default keys otherwise.")
    known_hosts: Path | None = Field(None, description="Known-hosts file; ~/.ssh/known_hosts when unset.")
    remote_workspace: str = Field(description="The workspace's directory on the remote machine (absolute).")
    connect_timeout_s: float = Field(15.0, gt=0)


class DockerSocketSettings(BaseModel):
    socket: Path = Path("/var/run/docker.sock")
    image: str = Field(description="The image commands run in, e.g. 'python:3.12-slim'.")
    workspace_mount: str = Field("/workspace", description="Where the workspace is mounted in the container.")
    read_only: bool = Field(False, description="Mount the workspace read-only.")
    cpus: float | None = Field(2.0, gt=0)
    memory_mb: int | None = Field(2048, gt=0)
    network: bool = Field(False, description="Give the container a network (none by default).")


class BackendSettings(BaseModel):
    """``[backends]`` in ``tandem.toml``."""

    default: str = Field("native", description="The backend execute_command uses when the call names none.")
    privileged: bool = Field(False, description="Offer the 'privileged' backend: commands without the allow-list.")
    host_agent: HostAgentSettings | None = None
    ssh_remote: SshRemoteSettings | None = None
    docker_socket: DockerSocketSettings | None = None


class NativeBackend:
    """Here, through the command runner, under the policy."""

    name = "native"

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    async def run(self, request: CommandRequest, on_output: OutputCallback | None = None) -> CommandResult:
        if request.shell:
            return await self.runner.run_shell_checked(
                request.command or "",
                cwd=request.cwd,
                timeout_s=request.timeout_s,
                env=request.env,
                stdin=request.stdin,
                on_output=on_output,
            )
        return await self.runner.run_checked(
            request.argv,
            cwd=request.cwd,
            timeout_s=request.timeout_s,
            env=request.env,
            stdin=request.stdin,
            on_output=on_output,
        )


class PrivilegedBackend:
    """Here, without the allow-list (the working directory, time limit, output caps and scrubbed environment
    still apply). Offered only when the settings say so; every use is logged as a warning."""

    name = "privileged"

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    async def run(self, request: CommandRequest, on_output: OutputCallback | None = None) -> CommandResult:
        argv = ["bash", "-c", request.command or ""] if request.shell else request.argv
        if not argv or not argv[0]:
            raise ToolError("no command given")
        logger.warning("PRIVILEGED command, no allow-list: %s (cwd %s)", argv, request.cwd)
        return await self.runner.run(
            argv,
            cwd=request.cwd,
            timeout_s=request.timeout_s,
            env=request.env,
            stdin=request.stdin,
            on_output=on_output,
        )


def available_backends(settings: BackendSettings) -> list[str]:
    """The backends these settings offer, the default first."""
    names = ["native"]
    if settings.privileged:
        names.append("privileged")
    names += [name for name in ("host_agent", "ssh_remote", "docker_socket") if getattr(settings, name) is not None]
    return sorted(names, key=lambda name: name != settings.default)


def backend_for(name: str | None, workspace: Path, policy: CommandPolicy, settings: BackendSettings) -> Backend:
    """The backend ``name`` (the configured default when ``None``); ``ToolError`` if it is not configured."""
    chosen = name or settings.default
    offered = available_backends(settings)
    if chosen not in offered:
        raise ToolError(
            f"the {chosen!r} backend is not configured; available: {', '.join(offered)} "
            "(backends are set up under [backends] in tandem.toml)"
        )
    runner = CommandRunner(workspace, policy)
    if chosen == "native":
        return NativeBackend(runner)
    if chosen == "privileged":
        return PrivilegedBackend(runner)
    if chosen == "host_agent":
        from tandem.core.backends.host_agent import HostAgentBackend

        assert settings.host_agent is not None
        return HostAgentBackend(settings.host_agent)
    if chosen == "ssh_remote":
        from tandem.core.backends.ssh_remote import SshRemoteBackend

        assert settings.ssh_remote is not None
        return SshRemoteBackend(settings.ssh_remote, workspace, policy)
    from tandem.core.backends.docker_socket import DockerSocketBackend

    assert settings.docker_socket is not None
    return DockerSocketBackend(settings.docker_socket, workspace, policy)
