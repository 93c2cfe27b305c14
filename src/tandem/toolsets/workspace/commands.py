"""Command tools: run a command under the policy (output streamed as progress), check a program, and describe
the machine and the server."""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import sys
from typing import Annotated

from pydantic import BaseModel, Field

from tandem.core import CallContext, CommandRefused, ToolError
from tandem.core.backends import CommandRequest, backend_for
from tandem.core.command_policy import check_command
from tandem.toolsets.workspace.toolset import toolset

PROGRESS_INTERVAL_S = 0.5
VERSION_PROBES = {
    "git": ["git", "--version"],
    "rg": ["rg", "--version"],
    "node": ["node", "--version"],
    "npm": ["npm", "--version"],
    "uv": ["uv", "--version"],
    "cargo": ["cargo", "--version"],
    "go": ["go", "version"],
    "docker": ["docker", "--version"],
    "make": ["make", "--version"],
}


class CommandOutput(BaseModel):
    command: str
    exit_code: int | None = Field(description="Negative when a signal ended the command (-9: killed).")
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool
    output_limit_hit: bool = Field(description="The command produced too much output and was stopped.")
    backend: str


@toolset.tool(destructive=True, open_world=True, title="Run a command")
async def execute_command(
    ctx: CallContext,
    command: str | None = None,
    argv: list[str] | None = None,
    cwd: str = ".",
    timeout_s: Annotated[float, Field(gt=0)] | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    shell: bool = False,
    backend: str | None = None,
) -> CommandOutput:
    """Run a program in the workspace under Tandem's command policy and return its exit code and output.

    Give ``argv`` (``["pytest", "-q", "tests"]``) or ``command`` (split like a shell would, but run without one).
    ``shell=true`` runs ``command`` through bash, only if the policy allows a shell. The policy allows a list of
    programs (see check_command_exists); a refusal says why. ``cwd`` is relative to the workspace root; ``timeout_s``
    defaults to the policy's (120 s). Secrets are removed from the environment; ``env`` adds variables. Output is
    capped (start and end kept) and streamed as progress while the command runs. ``backend`` picks where it runs
    (``native``, the default, is here; others are what [backends] in tandem.toml sets up).
    """
    if (command is None) == (argv is None):
        raise ToolError("give either 'command' (a string) or 'argv' (a list), not both or neither")
    chosen = backend_for(backend, ctx.workspace, ctx.settings.commands, ctx.settings.backends)
    if shell and command is None:
        raise ToolError("shell=true needs 'command' (a string)")
    words = [] if shell else argv if argv is not None else _split(command or "")
    request = CommandRequest(
        argv=words, command=command, shell=shell, cwd=cwd, timeout_s=timeout_s, env=env, stdin=stdin
    )
    result = await chosen.run(request, ctx.output_progress(PROGRESS_INTERVAL_S))
    shown = command if shell and command is not None else shlex.join(words)
    return CommandOutput(
        command=shown,
        backend=chosen.name,
        **result.reported(),
    )


def _split(command: str) -> list[str]:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ToolError(f"cannot split the command: {exc}") from None
    operators = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}
    if any(word in operators for word in words):
        raise ToolError(
            "the command has shell operators (| && ; > <), which need a shell: pass shell=true if the policy "
            "allows it, or run the programs one at a time"
        )
    return words


class CommandCheck(BaseModel):
    name: str
    installed: bool
    path: str | None
    allowed: bool = Field(description="Whether the command policy lets execute_command run it (without arguments).")
    reason: str | None = Field(None, description="Why the policy refuses it.")


@toolset.tool(read_only=True, title="Check a command")
def check_command_exists(ctx: CallContext, name: str) -> CommandCheck:
    """Say whether a program is installed and whether the command policy allows running it."""
    if not name or "/" in name or "\x00" in name:
        raise ToolError("give a program name without a directory, like 'pytest'")
    path = shutil.which(name)
    try:
        check_command(ctx.settings.commands, ctx.workspace, [name])
        allowed, reason = True, None
    except CommandRefused as exc:
        allowed, reason = False, str(exc)
    return CommandCheck(name=name, installed=path is not None, path=path, allowed=allowed, reason=reason)


class SystemInfo(BaseModel):
    os: str
    kernel: str
    machine: str
    cpus: int
    memory_total_mb: int | None
    disk_free_mb: int = Field(description="Free space where the workspace lives.")
    python: str
    tools: dict[str, str | None] = Field(description="Versions of common developer tools; null when not installed.")


@toolset.tool(read_only=True, title="System info")
async def get_system_info(ctx: CallContext) -> SystemInfo:
    """Describe the machine commands run on: OS, CPU, memory, free disk, Python and common tool versions."""
    tools: dict[str, str | None] = {}
    for name, probe in VERSION_PROBES.items():
        if shutil.which(probe[0]) is None:
            tools[name] = None
            continue
        result = await ctx.commands.run(probe, timeout_s=10)
        first = (result.stdout or result.stderr).strip().splitlines()
        tools[name] = first[0][:100] if result.ok and first else None
    disk = shutil.disk_usage(ctx.workspace)
    return SystemInfo(
        os=platform.platform(terse=True),
        kernel=platform.release(),
        machine=platform.machine(),
        cpus=os.cpu_count() or 1,
        memory_total_mb=_memory_mb("MemTotal"),
        disk_free_mb=disk.free // (1024 * 1024),
        python=sys.version.split()[0],
        tools=tools,
    )


class SystemStatus(BaseModel):
    load_average: list[float] | None
    memory_available_mb: int | None
    uptime_s: float = Field(description="How long this Tandem server has been running.")
    sessions: int
    tasks: int


@toolset.tool(read_only=True, title="System status")
def get_system_status(ctx: CallContext) -> SystemStatus:
    """Report the machine's load and free memory, and this server's uptime, sessions and tasks."""
    status = ctx.server_status()
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return SystemStatus(
        load_average=[round(x, 2) for x in load] if load else None,
        memory_available_mb=_memory_mb("MemAvailable"),
        uptime_s=status.get("uptime_s", 0.0),
        sessions=status.get("sessions", 0),
        tasks=status.get("tasks", 0),
    )


def _memory_mb(field: str) -> int | None:
    """A field of ``/proc/meminfo`` in MB (Linux); ``None`` elsewhere."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None
