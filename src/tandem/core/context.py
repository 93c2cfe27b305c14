"""The per-call context every tool, resource and prompt function may ask for.

The core knows nothing of JSON-RPC: the server hands each call a ``Peer`` that speaks to the client, and the
context is the tool's one door to it (progress, logs to the client, sampling, elicitation).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from tandem.core.commands import CommandRunner
from tandem.core.errors import ToolError
from tandem.core.workspace_path import relative_display, workspace_entry, workspace_path

if TYPE_CHECKING:
    from tandem.config import Settings

T = TypeVar("T")

LogLevel = Literal["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]

logger = logging.getLogger("tandem.tools")


class Peer(Protocol):
    """What the client at the other end can be asked to do during one call."""

    async def progress(self, progress: float, total: float | None, message: str | None) -> None: ...

    async def log(self, level: LogLevel, data: Any, logger_name: str | None) -> None: ...

    async def sample(self, prompt: str, *, system: str | None, max_tokens: int) -> str: ...

    async def elicit(self, message: str, schema: dict[str, Any]) -> dict[str, Any] | None: ...


class _NoPeer:
    """A call made in-process (``tandem call``, tests): progress and logs go to the log, nothing to ask."""

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        logger.info("progress %s/%s %s", progress, total if total is not None else "?", message or "")

    async def log(self, level: LogLevel, data: Any, logger_name: str | None) -> None:
        logger.log(logging.getLevelNamesMapping().get(level.upper(), logging.INFO), "%s", data)

    async def sample(self, prompt: str, *, system: str | None, max_tokens: int) -> str:
        raise RuntimeError("no client is connected to sample from")

    async def elicit(self, message: str, schema: dict[str, Any]) -> dict[str, Any] | None:
        raise RuntimeError("no client is connected to ask")


@dataclass
class CallContext:
    """Handed to a tool that declares a parameter of this type; never part of the tool's schema."""

    workspace: Path
    settings: Settings
    session_id: str | None = None
    transport: str = "in-process"
    correlation_id: str = ""
    peer: Peer = field(default_factory=_NoPeer)
    state: dict[str, Any] = field(default_factory=dict)
    """Per-session scratch space that lives as long as the client's connection."""
    server_status: Callable[[], dict[str, Any]] = dict
    """What the serving process says of itself: uptime, sessions, toolsets, timings."""
    protocol_version: str = ""
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    """What the client declared it can do (``sampling``, ``elicitation``, ``roots``, ...)."""
    input_responses: dict[str, Any] | None = None
    """The client's answers to an ``InputRequired`` result, by the keys that result used."""
    request_state: str | None = None
    """The ``state`` of the ``InputRequired`` result being answered, verified by the server."""
    roots: tuple[Path, ...] = ()
    """The client's roots (directories); when there are any, paths must lie inside one of them too."""
    services: dict[str, Any] = field(default_factory=dict)
    """The server's running toolset services, by toolset name; see ``service``."""
    detacher: Callable[[], None] | None = None
    """Set by the server when this call may go on as a task; see ``run_as_task``."""

    def path(self, path: str) -> Path:
        """The real path ``path`` names inside the workspace (and the client's roots, if it has any);
        ``PathRefused`` (a tool error) if it leaves them."""
        return workspace_path(self.workspace, path, within=self.roots)

    def entry(self, path: str) -> Path:
        """Like ``path``, but a symlink at the end stays itself: for deleting, moving or inspecting the link."""
        return workspace_entry(self.workspace, path, within=self.roots)

    def display(self, path: Path) -> str:
        """A confined path as the client should see it: relative to the workspace root."""
        return relative_display(self.workspace, path)

    def service(self, name: str) -> Any:
        """The running service of toolset ``name`` (its ``@toolset.service``); a tool error if it is not running."""
        try:
            return self.services[name]
        except KeyError:
            raise ToolError(f"the {name} service is not running in this server") from None

    @property
    def commands(self) -> CommandRunner:
        """The command runner for this workspace, under the configured policy."""
        return CommandRunner(self.workspace, self.settings.commands)

    async def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Tell the client how far the call has come; a no-op when the client asked for no progress."""
        await self.peer.progress(progress, total, message)

    async def log(self, level: LogLevel, data: Any, logger_name: str | None = None) -> None:
        """Send a log message to the client (``notifications/message``)."""
        await self.peer.log(level, data, logger_name)

    async def sample(self, prompt: str, *, system: str | None = None, max_tokens: int = 1024) -> str:
        """Ask the client's model for a completion and return its text."""
        return await self.peer.sample(prompt, system=system, max_tokens=max_tokens)

    async def elicit(self, message: str, schema: dict[str, Any]) -> dict[str, Any] | None:
        """Ask the user for structured input; ``None`` when they decline or cancel."""
        return await self.peer.elicit(message, schema)

    async def run_as_task(self) -> None:
        """Let the rest of this call run as a task the client polls, when the client and the tool support tasks.

        The client gets its answer (the task) at once; what the tool returns from here on becomes the task's result,
        and an ``InputRequired`` it returns parks the task until the client answers. A no-op otherwise: the call
        simply goes on.
        """
        if self.detacher is not None:
            self.detacher()
        await anyio.lowlevel.checkpoint()

    def output_progress(self, interval_s: float = 0.5) -> Callable[[str, str], Awaitable[bool]]:
        """An ``on_output`` callback for the command runner: the newest line of output reported as progress (the
        seconds since it started as the value), at most every ``interval_s``."""
        started = last = time.monotonic()
        latest = ""

        async def progress(stream: str, text: str) -> bool:
            nonlocal last, latest
            lines = [line for line in text.splitlines() if line.strip()]
            if lines:
                latest = lines[-1][:200]
            if time.monotonic() - last >= interval_s:
                last = time.monotonic()
                await self.report_progress(round(time.monotonic() - started, 1), None, latest)
            return False

        return progress

    async def checkpoint(self) -> None:
        """Raise the cancellation if the client has cancelled this call; call it between steps of long work."""
        await anyio.lowlevel.checkpoint()

    async def run_sync(self, fn: Callable[[], T]) -> T:
        """Run blocking work in a worker thread; a cancelled call stops waiting for it at once."""
        return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
