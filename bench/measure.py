"""One cell of the benchmark: N clients, each on its own connection making sequential calls, warmed up and then
measured for a fixed time. Every reply is checked; a client whose call fails reconnects and carries on."""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from loadgen import Client, check
from servers import cpu_seconds

OPEN_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
RETRY_PAUSE_S = 0.1
ERROR_SAMPLES = 3


@dataclass(frozen=True)
class Cell:
    """What one server did for one transport and client count. CPU percentages are of one core."""

    clients: int
    calls: int
    duration_s: float
    calls_per_s: float
    p50_ms: float
    p95_ms: float
    errors: int
    error_samples: list[str]
    server_cpu_pct: float
    server_cpu_us_per_call: float
    loadgen_cpu_pct: float


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


async def _close(client: Client) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await client.close()


async def _open(client: Client, tally: _Tally) -> bool:
    try:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            await client.open()
    except Exception as exc:
        tally.errors["open: " + _describe(exc)] += 1
        await _close(client)
        return False
    return True


async def _drive(client: Client, opened: bool, start: float, stop: float, tally: _Tally) -> None:
    """Call until ``stop``; record the latency of each correct reply that arrives in [start, stop)."""
    request_id = 0
    while time.perf_counter() < stop:
        if not opened:
            await asyncio.sleep(RETRY_PAUSE_S)
            opened = await _open(client, tally)
            continue
        request_id += 1
        began = time.perf_counter()
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                reply = await client.call(request_id)
        except Exception as exc:
            tally.errors[_describe(exc)] += 1
            await _close(client)
            opened = False
            continue
        ended = time.perf_counter()
        problem = check(reply)
        if problem is not None:
            tally.errors[problem] += 1
        elif start <= ended < stop:
            tally.latencies.append(ended - began)
    await _close(client)


def _percentile_ms(quantiles: list[float], percent: int) -> float:
    return quantiles[percent - 1] * 1000 if quantiles else math.nan


async def run_cell(
    make: Callable[[], Client], clients: int, *, warmup_s: float, duration_s: float, server_pid: int
) -> Cell:
    tally = _Tally()
    pool = [make() for _ in range(clients)]
    opened = await asyncio.gather(*(_open(client, tally) for client in pool))
    start = time.perf_counter() + warmup_s
    stop = start + duration_s
    drivers = [
        asyncio.create_task(_drive(client, ok, start, stop, tally)) for client, ok in zip(pool, opened, strict=True)
    ]
    await asyncio.sleep(start - time.perf_counter())
    loadgen_before, server_before = time.process_time(), cpu_seconds(server_pid)
    await asyncio.sleep(stop - time.perf_counter())
    loadgen_cpu, server_cpu = time.process_time() - loadgen_before, cpu_seconds(server_pid) - server_before
    await asyncio.gather(*drivers)

    calls = len(tally.latencies)
    quantiles = statistics.quantiles(tally.latencies, n=100, method="inclusive") if calls > 1 else []
    return Cell(
        clients=clients,
        calls=calls,
        duration_s=duration_s,
        calls_per_s=calls / duration_s,
        p50_ms=_percentile_ms(quantiles, 50),
        p95_ms=_percentile_ms(quantiles, 95),
        errors=sum(tally.errors.values()),
        error_samples=[f"{count}x {message}" for message, count in tally.errors.most_common(ERROR_SAMPLES)],
        server_cpu_pct=100 * server_cpu / duration_s,
        server_cpu_us_per_call=1e6 * server_cpu / calls if calls else math.nan,
        loadgen_cpu_pct=100 * loadgen_cpu / duration_s,
    )


def best_of(cells: list[Cell]) -> Cell:
    """The round with the most calls/s (interference only ever slows a round down), with every round's errors."""
    best = max(cells, key=lambda cell: cell.calls_per_s)
    samples = list(dict.fromkeys(sample for cell in cells for sample in cell.error_samples))
    return replace(best, errors=sum(cell.errors for cell in cells), error_samples=samples)
