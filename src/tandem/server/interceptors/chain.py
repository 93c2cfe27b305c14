"""The interceptor chain: every message in and out of the server, on every transport, passes through it.

An interceptor is an onion layer: it gets a ``Message`` and ``call_next``. For an inbound request ``call_next``
returns the response, so one layer sees the request going in and the response coming out. It can continue
(``return await call_next(message)``), modify (pass a changed message on, or change what comes back), or block
(raise ``Blocked`` for a JSON-RPC error, or return a response of its own without calling ``call_next``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

Direction = Literal["inbound", "outbound"]
Kind = Literal["request", "notification", "response"]

INVALID_REQUEST = -32600


@dataclass(frozen=True, slots=True)
class Message:
    """One JSON-RPC message as an interceptor sees it, with where it came from."""

    direction: Direction
    kind: Kind
    method: str
    params: dict[str, Any] | None = None
    id: str | int | None = None
    result: dict[str, Any] | None = None
    """The response's result; on a response message only."""
    error: dict[str, Any] | None = None
    """The response's JSON-RPC error object (code, message, data); on a response message only."""
    transport: str = "unknown"
    session_id: str | None = None
    correlation_id: str = field(default_factory=lambda: os.urandom(8).hex())
    state: dict[str, Any] = field(default_factory=dict)
    """Scratch space shared by the layers handling this one exchange."""

    def response(self, *, result: dict[str, Any] | None = None, error: dict[str, Any] | None = None) -> Message:
        """The response to this request, carrying its identity (transport, session, correlation id)."""
        return Message(
            direction="outbound",
            kind="response",
            method=self.method,
            id=self.id,
            result=result,
            error=error,
            transport=self.transport,
            session_id=self.session_id,
            correlation_id=self.correlation_id,
            state=self.state,
        )

    def with_params(self, params: dict[str, Any] | None) -> Message:
        return replace(self, params=params)


class Blocked(Exception):
    """Raised by an interceptor to refuse a message; an inbound request gets this JSON-RPC error."""

    def __init__(self, message: str, code: int = INVALID_REQUEST, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data


CallNext = Callable[[Message], Awaitable["Message | None"]]


class Interceptor(Protocol):
    """One layer of the chain; ``name`` shows in logs and in ``tandem tools``."""

    name: str

    async def __call__(self, message: Message, call_next: CallNext) -> Message | None: ...


class InterceptorChain:
    """An ordered list of interceptors, outermost first."""

    def __init__(self, interceptors: Sequence[Interceptor] = ()) -> None:
        self._interceptors: list[Interceptor] = list(interceptors)

    def add(self, interceptor: Interceptor, *, first: bool = False) -> None:
        self._interceptors.insert(0 if first else len(self._interceptors), interceptor)

    async def run(self, message: Message, terminal: CallNext) -> Message | None:
        """Pass ``message`` through every layer; ``terminal`` is what happens after the innermost one."""
        call = terminal
        for interceptor in reversed(self._interceptors):
            call = functools.partial(_through, interceptor, call)
        return await call(message)


def _through(interceptor: Interceptor, call_next: CallNext, message: Message) -> Awaitable[Message | None]:
    """One layer bound to the rest of the chain; returns the layer's own awaitable (no wrapper coroutine)."""
    return interceptor(message, call_next)
