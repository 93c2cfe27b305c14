"""What the toolset benchmarks share: a Tandem server on a workspace, driven in-process through the SDK's client
(arguments validated, the interceptor chain, the tool, the result shaped and checked), and best-of-N timing."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tandem.config import load_settings
from tandem.core import Registry
from tandem.server import TandemServer


def server(workspace: Path, toolsets: list[str]) -> TandemServer:
    settings = load_settings(workspace, toolsets=toolsets, log_level="warning", log_requests=False)
    return TandemServer(Registry.from_entry_points(settings.toolsets), settings)


async def best(rounds: int, fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """The fastest of ``rounds`` runs of ``fn`` in seconds, and what its last run returned."""
    fastest, value = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        value = await fn()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest, value


async def compare(
    rounds: int, reference: Callable[[], Awaitable[int]], tandem: Callable[[], Awaitable[int]], names: tuple[str, str]
) -> str:
    """Best-of-``rounds`` timings of a reference command and the Tandem tool doing the same job, each returning how
    many things it found, as one row with the ratio Tandem / reference."""
    reference_s, expected = await best(rounds, reference)
    tandem_s, found = await best(rounds, tandem)
    return (
        f"{names[0]} {reference_s * 1000:8.1f} ms ({expected} found) | {names[1]} {tandem_s * 1000:8.1f} ms "
        f"({found} found) | ratio {tandem_s / reference_s:5.2f}"
    )
