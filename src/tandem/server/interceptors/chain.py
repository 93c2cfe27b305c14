"""The interceptor chain: every message in and out of the server, on every transport, passes through it.

An interceptor is an onion layer: it gets a ``Message`` and ``call_next``. For an inbound request ``call_next``
returns the response, so one layer sees the request going in and the response coming out. It can continue
(``return await call_next(message)``), modify (pass a changed message on, or change what comes back), or block
(raise ``Blocked`` for a JSON-RPC error, or return a response of its own without calling ``call_next``).
"""

from __future__ import annotations

import uuid
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
    correlation_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    state: dict[str, Any] = field(default_factory=dict)
    """Scratch space shared by the layers handling this one exchange."""

    def response(self, *, result: dict[str, Any] | None = None, error: dict[str, Any] | None = None) -> Message:
        """The response to this request, carrying its identity (transport, session, correlation id)."""
        return replace(self, direction="outbound", kind="response", params=None, result=result, error=error)

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
            call = _bind(interceptor, call)
        return await call(message)


def _bind(interceptor: Interceptor, call_next: CallNext) -> CallNext:
    async def call(message: Message) -> Message | None:
        return await interceptor(message, call_next)

    return call
