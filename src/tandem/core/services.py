"""Toolset services: long-lived state a toolset keeps for the life of the server (an index, a database, threads).

A toolset registers one with ``@toolset.service``: a function that takes the settings and returns a context
manager. The server enters every service once, however many connections share it (stdio, each SSE stream, the
HTTP app), and leaves them when the last one is gone; tools reach theirs as ``ctx.service(name)``.

Services are plain (synchronous) context managers so that entering and leaving them may happen on different tasks
or threads; background work inside them runs in threads of their own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread

if TYPE_CHECKING:
    from tandem.config import Settings

ServiceFactory = Callable[["Settings"], contextlib.AbstractContextManager[Any]]


class Services:
    """The running services of one server, started by the first user and stopped by the last."""

    def __init__(self, factories: Mapping[str, ServiceFactory], settings: Settings) -> None:
        self.factories = dict(factories)
        self.settings = settings
        self.running: dict[str, Any] = {}
        self._users = 0
        self._stack: contextlib.ExitStack | None = None
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self._users == 0:
                stack = contextlib.ExitStack()
                try:
                    for name, factory in self.factories.items():
                        self.running[name] = stack.enter_context(factory(self.settings))
                except BaseException:
                    self.running.clear()
                    stack.close()
                    raise
                self._stack = stack
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._stack is not None:
                stack, self._stack = self._stack, None
                self.running.clear()
                stack.close()

    @contextlib.contextmanager
    def held(self) -> Iterator[dict[str, Any]]:
        """The services, running for the length of the block."""
        self.acquire()
        try:
            yield self.running
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def held_async(self) -> AsyncIterator[dict[str, Any]]:
        """``held`` for async code: starting and stopping run in a worker thread, off the event loop."""
        await anyio.to_thread.run_sync(self.acquire)
        try:
            yield self.running
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.release)

    def report(self, what: str) -> dict[str, Any]:
        """What the running services say of themselves through their ``health()`` or ``metrics()``, by name."""
        out: dict[str, Any] = {}
        for name, service in list(self.running.items()):
            method = getattr(service, what, None)
            if callable(method):
                out[name] = method()
        return out
