"""Timing: per-method call counts and latency figures, kept in memory for /health and the server toolset."""

from __future__ import annotations

import time
from bisect import bisect_left, insort
from collections import defaultdict, deque
from dataclasses import dataclass, field

from tandem.server.interceptors.chain import CallNext, Message

_WINDOW = 1024
"""Latencies kept per method for percentiles: the most recent ones, so memory stays bounded."""


@dataclass
class MethodTimings:
    count: int = 0
    errors: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    recent: deque[float] = field(default_factory=deque)
    _order: list[float] = field(default_factory=list)

    def add(self, ms: float, failed: bool) -> None:
        self.count += 1
        self.errors += failed
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)
        self.recent.append(ms)
        insort(self._order, ms)
        if len(self.recent) > _WINDOW:
            del self._order[bisect_left(self._order, self.recent.popleft())]

    def percentile(self, q: float) -> float:
        if not self._order:
            return 0.0
        return self._order[min(len(self._order) - 1, int(q * len(self._order)))]

    def summary(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "errors": self.errors,
            "mean_ms": round(self.total_ms / self.count, 3) if self.count else 0.0,
            "p50_ms": round(self.percentile(0.50), 3),
            "p95_ms": round(self.percentile(0.95), 3),
            "max_ms": round(self.max_ms, 3),
        }


class TimingInterceptor:
    """Measures every inbound request by method (tools by name, as ``tools/call:NAME``)."""

    name = "timing"

    def __init__(self) -> None:
        self.methods: dict[str, MethodTimings] = defaultdict(MethodTimings)

    async def __call__(self, message: Message, call_next: CallNext) -> Message | None:
        if message.kind != "request":
            return await call_next(message)
        key = message.method
        if message.method == "tools/call" and message.params and isinstance(message.params.get("name"), str):
            key = f"tools/call:{message.params['name']}"
        started = time.perf_counter()
        failed = True
        try:
            response = await call_next(message)
            failed = response is None or response.error is not None or bool((response.result or {}).get("isError"))
            return response
        finally:
            self.methods[key].add((time.perf_counter() - started) * 1000, failed)

    def snapshot(self) -> dict[str, dict[str, float | int]]:
        return {method: timings.summary() for method, timings in sorted(self.methods.items())}
