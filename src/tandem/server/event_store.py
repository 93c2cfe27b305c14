"""A bounded in-memory event store, so a Streamable HTTP client that loses its SSE stream can resume it."""

from __future__ import annotations

import itertools
from collections import OrderedDict

from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp_types import JSONRPCMessage


class MemoryEventStore(EventStore):
    """Keeps the newest ``capacity`` events of all streams; older ones are forgotten, oldest first.

    Event ids are decimal sequence numbers, so replay is a walk forward from the client's ``Last-Event-ID``.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._events: OrderedDict[int, tuple[str, JSONRPCMessage | None]] = OrderedDict()
        self._next = itertools.count(1)

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        seq = next(self._next)
        self._events[seq] = (stream_id, message)
        while len(self._events) > self._capacity:
            self._events.popitem(last=False)
        return str(seq)

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        try:
            last = int(last_event_id)
        except ValueError:
            return None
        known = self._events.get(last)
        if known is None:
            return None
        stream_id = known[0]
        later = [(seq, message) for seq, (sid, message) in self._events.items() if seq > last and sid == stream_id]
        for seq, message in later:
            if message is not None:  # None marks a priming event, which carries nothing to replay
                await send_callback(EventMessage(message, str(seq)))
        return stream_id
