"""Live client connections, whatever transport carries them, for /health and the server toolset."""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

import anyio

current_transport: ContextVar[str] = ContextVar("tandem_transport", default="in-memory")
"""Set by a transport around the connections it serves; read when a message arrives."""


@dataclass
class SessionInfo:
    id: str
    transport: str
    opened: float = field(default_factory=time.time)


class SessionTracker:
    """Connections open now, by session id."""

    def __init__(self) -> None:
        self.sessions: dict[str, SessionInfo] = {}

    def open(self, transport: str, session_id: str | None = None) -> SessionInfo:
        info = SessionInfo(id=session_id or uuid.uuid4().hex, transport=transport)
        self.sessions[info.id] = info
        return info

    def close(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self.sessions)

    def by_transport(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for info in self.sessions.values():
            counts[info.transport] = counts.get(info.transport, 0) + 1
        return counts


class Exchange:
    """The handlers serving one HTTP exchange, so that a client hanging up can cancel them."""

    def __init__(self) -> None:
        self.scopes: list[anyio.CancelScope] = []
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        for scope in self.scopes:
            scope.cancel()


current_exchange: ContextVar[Exchange | None] = ContextVar("tandem_exchange", default=None)
"""Set by a transport whose requests cannot be cancelled by message (stateless HTTP); read by the binding."""
