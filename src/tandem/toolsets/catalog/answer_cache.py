"""The answer cache: per-namespace time-to-live, one least-recently-used bound over all of them, hit counts.

The key is the method and a hash of its parameters with sorted keys, as the seed specifies.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any


def cache_key(method: str, params: Mapping[str, Any]) -> str:
    canonical = json.dumps({k: v for k, v in params.items() if v is not None}, sort_keys=True, separators=(",", ":"))
    return f"{method}:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"


class AnswerCache:
    def __init__(self, ttl: Mapping[str, float], max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = dict(ttl)
        self.max_entries = max_entries
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._entries: OrderedDict[tuple[str, str], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, namespace: str, key: str) -> Any | None:
        """A copy of the cached answer, or ``None`` (counted as a miss) if absent or expired."""
        with self._lock:
            found = self._entries.get((namespace, key))
            if found is not None and found[0] > self.clock():
                self._entries.move_to_end((namespace, key))
                self.hits += 1
                return copy.deepcopy(found[1])
            if found is not None:
                del self._entries[(namespace, key)]
            self.misses += 1
            return None

    def put(self, namespace: str, key: str, answer: Any) -> None:
        ttl = self.ttl.get(namespace, 0.0)
        if ttl <= 0:
            return
        with self._lock:
            self._entries[(namespace, key)] = (self.clock() + ttl, copy.deepcopy(answer))
            self._entries.move_to_end((namespace, key))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.evictions += 1

    def invalidate(self, *namespaces: str) -> int:
        """Drop every answer in ``namespaces`` (all of them when none is named); how many were dropped."""
        with self._lock:
            doomed = [k for k in self._entries if not namespaces or k[0] in namespaces]
            for k in doomed:
                del self._entries[k]
            return len(doomed)

    def stats(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / total, 4) if total else 0.0,
            "entries": len(self._entries),
            "evictions": self.evictions,
        }
