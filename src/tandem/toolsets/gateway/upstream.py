"""One upstream MCP server: its connection, kept up by a supervisor that restarts it, and the calls forwarded to it.

Everything here runs on the gateway's own event loop (see ``tandem.toolsets.gateway.service``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from tandem.core import InvalidArguments, ToolError
from tandem.core.gateway_settings import GatewaySettings, UpstreamSettings
from tandem.toolsets.gateway.child import EXIT_POLL_S, Child, child_process

logger = logging.getLogger("tandem.gateway")

State = Literal["starting", "running", "restarting", "stopped"]
ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
RESTART_WAIT_S = 2.0
"""A call waits for a restart due this soon; one further off is answered at once with when it will be."""
MAX_TOOL_PAGES = 50
"""How many pages of tools/list an upstream may answer with; a paginator that never ends cannot hang the start."""


@dataclass
class _Connection:
    """One life of the upstream: from the start of its process (or first request) until it is gone."""

    child: Child | None
    client: Client | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)
    ended: anyio.Event = field(default_factory=anyio.Event)
    gone: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    error: BaseException | None = None
    lost: str | None = None
    """Why a call found the connection broken, when one did."""

    @property
    def usable(self) -> bool:
        exited = self.child is not None and not self.child.alive
        return self.client is not None and self.ready.is_set() and not self.gone.is_set() and not exited


class Upstream:
    """An upstream server, as the gateway sees it: its state, its tools, and a way to call them."""

    def __init__(
        self,
        spec: UpstreamSettings,
        settings: GatewaySettings,
        *,
        workspace: Path,
        env: Callable[[], dict[str, str]],
        on_tools: Callable[[], None],
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.settings = settings
        self.workspace = workspace
        self.env = env
        self.on_tools = on_tools
        self.state: State = "starting"
        self.reason: str | None = None
        """Why the upstream is not running, or why it last went away."""
        self.restarts = 0
        self.tools: list[types.Tool] = []
        self.next_attempt: float | None = None
        self.settled = anyio.Event()
        """Set once the first start has succeeded or failed."""
        self._connection: _Connection | None = None
        self._changed = anyio.Event()
        self._scope = anyio.CancelScope()
        self._stopped = anyio.Event()

    @property
    def target(self) -> str:
        return self.spec.url or " ".join(self.spec.command or [])

    @property
    def pid(self) -> int | None:
        connection = self._connection
        child = connection.child if connection is not None else None
        return child.pid if child is not None and not child.exited.is_set() else None

    def _set(self, state: State, reason: str | None = None) -> None:
        self.state = state
        if reason is not None:
            self.reason = reason
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    # -- the supervisor ----------------------------------------------------------------------------------------

    async def supervise(self) -> None:
        """Keep the upstream up for the life of the gateway: start it, wait for it to go, restart it with backoff."""
        failures = 0
        try:
            with self._scope:
                async with anyio.create_task_group() as tg:
                    while True:
                        connection = _Connection(Child(self.name) if self.spec.command else None)
                        self._connection = connection
                        self._set("starting")
                        tg.start_soon(self._connect, connection)
                        with anyio.move_on_after(self.settings.start_timeout_s):
                            await _first(connection.ready, connection.ended)
                        if connection.ready.is_set():
                            failures = 0
                            self._set("running")
                            self.settled.set()
                            logger.info("upstream %s is running (%d tools)", self.name, len(self.tools))
                            await _first(connection.gone, connection.ended)
                        else:
                            failures += 1
                        timed_out = not (connection.ready.is_set() or connection.ended.is_set())
                        connection.gone.set()
                        connection.scope.cancel()
                        await connection.ended.wait()
                        why = connection.lost or self._why_gone(connection, timed_out=timed_out)
                        reason = why if connection.ready.is_set() else f"it did not start: {why}"
                        logger.warning("upstream %s is down: %s", self.name, reason)
                        if not self.settings.restart:
                            self._set("stopped", reason)
                            self.settled.set()
                            return
                        # A crash after a good run restarts at once; failed starts in a row wait longer each time.
                        delay = 0.0 if failures == 0 else self._backoff(failures)
                        self.next_attempt = time.monotonic() + delay
                        self._set("restarting", reason)
                        self.settled.set()
                        await anyio.sleep(delay)
                        self.restarts += 1
        finally:
            self._set("stopped")
            self._stopped.set()

    def _backoff(self, failures: int) -> float:
        return float(min(self.settings.restart_backoff_s * 2 ** (failures - 1), self.settings.restart_backoff_max_s))

    async def stop(self) -> None:
        """Stop the supervisor and the upstream with it (the child's process group is killed)."""
        self._scope.cancel()
        await self._stopped.wait()

    async def _connect(self, connection: _Connection) -> None:
        """Hold one connection open until it is gone: the handshake, the tool list, then wait."""
        try:
            with connection.scope:
                async with Client(self._transport(connection), mode="legacy", cache=None) as client:
                    tools = await _list_tools(client)
                    connection.client = client
                    if [t.model_dump() for t in tools] != [t.model_dump() for t in self.tools]:
                        self.tools = tools
                        self.on_tools()
                    connection.ready.set()
                    async with anyio.create_task_group() as watch:
                        if connection.child is not None:
                            watch.start_soon(_relay, connection.child.exited, connection.gone)
                        await connection.gone.wait()
                        watch.cancel_scope.cancel()
        except Exception as exc:
            connection.error = exc
            logger.debug("upstream %s: connection ended: %r", self.name, exc)
        finally:
            connection.ended.set()

    def _transport(self, connection: _Connection) -> Any:
        if self.spec.url is not None:
            return self.spec.url
        assert self.spec.command is not None and connection.child is not None
        # Built per start, inside it: an environment the policy refuses is this upstream's failure, not the server's.
        return child_process(connection.child, self.spec.command, cwd=self.workspace, env=self.env())

    def _why_gone(self, connection: _Connection, *, timed_out: bool = False) -> str:
        child = connection.child
        if child is not None and child.exited.is_set():
            return child.describe_exit()
        if connection.error is not None:
            return _describe(connection.error)
        if timed_out:
            return f"it did not answer within {self.settings.start_timeout_s:g} s ([gateway] start_timeout_s)"
        return "its connection closed"

    # -- calls -------------------------------------------------------------------------------------------------

    def unavailable(self) -> str:
        """Why a call cannot be forwarded now, and what happens next."""
        why = f"the {self.name} upstream is not running: {self.reason or 'it has not started'}"
        if self.state == "restarting" and self.next_attempt is not None:
            wait = max(0.0, self.next_attempt - time.monotonic())
            return f"{why}; it is being restarted (next attempt in {wait:.1f} s), try again then"
        if self.state == "starting":
            return f"{why}; it is being restarted, try again shortly"
        if not self.settings.restart:
            return f"{why}; restarting is off ([gateway] restart = false), so restart the orchestrator"
        return f"{why}; the gateway is stopping"

    async def _ready(self) -> _Connection:
        """The live connection, waiting for a start under way (or due within ``RESTART_WAIT_S``), at most the start
        timeout; otherwise a ``ToolError`` saying why the upstream is down and when it will be tried again."""
        deadline = time.monotonic() + self.settings.start_timeout_s
        while True:
            connection = self._connection
            if connection is not None and connection.usable:
                return connection
            if connection is not None and self.state == "running":
                # The process is gone but the supervisor has not seen it yet: it is about to restart.
                connection.gone.set()
            soon = time.monotonic() + RESTART_WAIT_S
            due = self.state in ("starting", "running") or (
                self.state == "restarting" and self.next_attempt is not None and self.next_attempt <= soon
            )
            if not due or time.monotonic() >= deadline:
                raise ToolError(self.unavailable())
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                await self._changed.wait()

    async def call(self, tool: str, arguments: dict[str, Any], progress: ProgressFn | None) -> types.CallToolResult:
        """Forward one ``tools/call``; failures of the upstream come back as ``ToolError`` saying what happened."""
        qualified = f"{self.name}.{tool}"
        connection = await self._ready()
        assert connection.client is not None
        timeout = self.spec.call_timeout_s or self.settings.call_timeout_s
        try:
            with anyio.fail_after(timeout):
                return await connection.client.call_tool(tool, arguments, progress_callback=progress)
        except TimeoutError:
            raise ToolError(
                f"{qualified} did not finish within {timeout:g} s ([gateway] call_timeout_s); ask for less work at "
                "once, or raise the limit"
            ) from None
        except MCPError as exc:
            if exc.error.code == types.CONNECTION_CLOSED:
                with anyio.move_on_after(EXIT_POLL_S * 4):  # let the connection record how it ended
                    await connection.ended.wait()
                gone = self._why_gone(connection)
                raise self._lost(connection, qualified, gone, during_call=connection.child is not None) from None
            if exc.error.code == types.INVALID_PARAMS:
                raise InvalidArguments(f"{qualified}: {exc.error.message}") from None
            message = exc.error.message
            raise ToolError(f"the {self.name} upstream answered {qualified} with an error: {message}") from None
        except ValidationError as exc:
            raise ToolError(f"the {self.name} upstream answered {qualified} with a malformed result: {exc}") from None
        except Exception as exc:  # the transport's own failures: refused connections, broken pipes, HTTP errors
            raise self._lost(connection, qualified, _describe(exc), during_call=False) from None

    def _lost(self, connection: _Connection, qualified: str, reason: str, during_call: bool) -> ToolError:
        """Mark the connection lost and say so: a child that went away during the call, or an upstream that could
        not be reached for it."""
        if during_call:
            self._lose(connection, f"it went away during a call: {reason}")
            return ToolError(
                f"the {self.name} upstream went away during {qualified} ({reason}); it is being restarted. "
                "The call may or may not have taken effect: check before calling it again"
            )
        self._lose(connection, f"it could not be reached: {reason}")
        return ToolError(
            f"the {self.name} upstream could not be reached for {qualified} ({reason}); it is being restarted"
        )

    def _lose(self, connection: _Connection, reason: str) -> None:
        if connection.lost is None:
            connection.lost = reason
        connection.gone.set()


async def _list_tools(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


async def _first(*events: anyio.Event) -> None:
    """Wait until any of ``events`` is set."""
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(wait, event)


async def _relay(source: anyio.Event, target: anyio.Event) -> None:
    await source.wait()
    target.set()


def _describe(exc: BaseException) -> str:
    """The innermost cause of a failure, in one line (task groups wrap what went wrong in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.error.message
    text = str(exc).strip()
    if isinstance(exc, ConnectionError) and text:
        return text[:500]
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__
