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
