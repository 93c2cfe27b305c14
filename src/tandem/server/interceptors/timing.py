"""Timing: per-method call counts and latency figures, kept in memory for /health and the server toolset."""

from __future__ import annotations

import time
from collections import defaultdict

from tandem.core.latency import MethodTimings
from tandem.server.interceptors.chain import CallNext, Message


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
