"""Latency figures per method: counts, errors, mean and percentiles over a bounded window of recent calls."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, field

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
            "p99_ms": round(self.percentile(0.99), 3),
            "max_ms": round(self.max_ms, 3),
        }
