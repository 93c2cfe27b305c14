"""Tandem against the SDK's own MCPServer: tools/call throughput and latency per transport, 1 and 32 clients.

    .venv/bin/python bench/run.py [--duration S] [--warmup S] [--quick] [--transports a,b] [--json out.json]

Starts every server needed, measures each cell for Tandem and then for the reference, stops the servers and
prints one table (and the JSON, if asked for). See bench/README.md for what each cell measures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import uvloop

from loadgen import HTTP_CLIENTS, Client, StdioClient
from measure import Cell, best_of, run_cell
from servers import HttpServer, reference_command, stderr_summary, stdio_server, tandem_command

TRANSPORTS = ("http-stateless-json", "http-2026", "http-stateful", "sse", "websocket", "stdio")
CLIENT_COUNTS = (1, 32)
SIDES = ("tandem", "reference")

# The server mode (one process each) that serves each HTTP-borne transport, per side.
SERVER_MODES: dict[str, dict[str, str]] = {
    "tandem": {
        "http-stateless-json": "stateless",
        "http-2026": "stateless",
        "http-stateful": "stateful",
        "sse": "stateful",
        "websocket": "stateful",
    },
    "reference": {
        "http-stateless-json": "stateless",
        "http-2026": "stateless",
        "http-stateful": "stateful",
        "sse": "sse",
    },
}
# The SDK has no WebSocket server: Tandem's WebSocket is compared with the reference's stateless JSON HTTP.
REFERENCE_STANDIN = {"websocket": "http-stateless-json"}


@dataclass(frozen=True)
class Timing:
    warmup_s: float
    duration_s: float
    rounds: int


@dataclass(frozen=True)
class Row:
    """One transport and client count: every round's cell for each side, and the best of them."""

    transport: str
    clients: int
    reference_transport: str
    tandem_rounds: list[Cell]
    reference_rounds: list[Cell]

    @property
    def tandem(self) -> Cell:
        return best_of(self.tandem_rounds)

    @property
    def reference(self) -> Cell:
        return best_of(self.reference_rounds)

    @property
    def ratio(self) -> float:
        return self.tandem.calls_per_s / self.reference.calls_per_s if self.reference.calls_per_s else math.nan


class Bench:
    """Measures cells against servers already running (HTTP) or started per cell (stdio)."""

    def __init__(self, servers: dict[tuple[str, str], HttpServer], workspace: Path, timing: Timing) -> None:
        self.servers = servers
        self.workspace = workspace
        self.timing = timing
        self.stdio_lines: dict[str, list[str]] = {side: [] for side in SIDES}
        self._measured: dict[tuple[int, str, str, int], Cell] = {}

    async def cell(self, round_index: int, side: str, transport: str, clients: int) -> Cell:
        """The cell, measured once per round (Tandem's WebSocket rows share the reference's stateless cells)."""
        key = (round_index, side, transport, clients)
        if key not in self._measured:
            self._measured[key] = cell = await self._measure(side, transport, clients)
            errors = f", {cell.errors} errors" if cell.errors else ""
            print(
                f"  round {round_index + 1}  {transport:<20} {clients:>2} clients  {side:<9} "
                f"{cell.calls_per_s:8.0f} calls/s  p50 {cell.p50_ms:6.2f} ms  p95 {cell.p95_ms:6.2f} ms{errors}",
                file=sys.stderr,
                flush=True,
            )
        return self._measured[key]

    async def _measure(self, side: str, transport: str, clients: int) -> Cell:
        if transport == "stdio":
            command = tandem_command(self.workspace) if side == "tandem" else reference_command("stdio")
            async with stdio_server(command, self.stdio_lines[side]) as process:
                return await self._run(lambda: StdioClient(process), clients, process.pid)
        server = self.servers[side, SERVER_MODES[side][transport]]
        make = HTTP_CLIENTS[transport]
        return await self._run(lambda: make(server.url), clients, server.pid)

    async def _run(self, make: Callable[[], Client], clients: int, pid: int) -> Cell:
        return await run_cell(
            make, clients, warmup_s=self.timing.warmup_s, duration_s=self.timing.duration_s, server_pid=pid
        )


async def measure_all(bench: Bench, transports: list[str]) -> list[Row]:
    """Every cell, round after round; each round swaps which side goes first."""
    cells: dict[tuple[str, int], dict[str, list[Cell]]] = {}
    for round_index in range(bench.timing.rounds):
        for transport in transports:
            for clients in (1,) if transport == "stdio" else CLIENT_COUNTS:
                rounds = cells.setdefault((transport, clients), {side: [] for side in SIDES})
                for side in SIDES if round_index % 2 == 0 else SIDES[::-1]:
                    measured = transport if side == "tandem" else REFERENCE_STANDIN.get(transport, transport)
                    rounds[side].append(await bench.cell(round_index, side, measured, clients))
    return [
        Row(transport, clients, REFERENCE_STANDIN.get(transport, transport), sides["tandem"], sides["reference"])
        for (transport, clients), sides in cells.items()
    ]


def cpu_steal() -> tuple[int, int]:
    """(stolen, total) CPU time of the whole machine since boot, in clock ticks (Linux ``/proc/stat``)."""
    ticks = [int(field) for field in Path("/proc/stat").read_text().partition("\n")[0].split()[1:9]]
    return ticks[7], sum(ticks)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mcp": version("mcp"),
        "tandem": version("tandem"),
        "uvicorn": version("uvicorn"),
    }


def table(rows: list[Row]) -> str:
    header = (
        "transport            | clients | tandem calls/s | p50 ms | p95 ms | reference calls/s |    p50 |    p95 "
        "| ratio | srv cpu us/call T/R | loadgen cpu% T/R | errors T/R"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        t, r = row.tandem, row.reference
        name = row.transport + ("*" if row.reference_transport != row.transport else "")
        lines.append(
            f"{name:<20} | {row.clients:>7} | {t.calls_per_s:>14.0f} | {t.p50_ms:>6.2f} | {t.p95_ms:>6.2f} "
            f"| {r.calls_per_s:>17.0f} | {r.p50_ms:>6.2f} | {r.p95_ms:>6.2f} | {row.ratio:>5.2f} "
            f"| {t.server_cpu_us_per_call:>9.0f} / {r.server_cpu_us_per_call:<7.0f} "
            f"| {t.loadgen_cpu_pct:>7.0f} / {r.loadgen_cpu_pct:<6.0f} | {t.errors} / {r.errors}"
        )
    if any(row.reference_transport != row.transport for row in rows):
        lines.append("* the SDK has no WebSocket server: its reference columns are the reference's http-stateless-json")
    return "\n".join(lines)


def problems(rows: list[Row], server_lines: dict[str, list[str]]) -> list[str]:
    """Failed calls and unexpected server stderr, for printing after the table."""
    found = []
    for row in rows:
        for label, cell in (
            (f"{row.transport} tandem", row.tandem),
            (f"{row.reference_transport} reference", row.reference),
        ):
            found += [f"{label} x{row.clients}: {sample}" for sample in cell.error_samples]
    for name, lines in server_lines.items():
        found += [f"{name} stderr: {line}" for line in stderr_summary(lines)]
    return list(dict.fromkeys(found))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each cell (default 1)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every cell; the best counts (default 2)")
    parser.add_argument("--quick", action="store_true", help="one round of 1 s cells after a 0.5 s warm-up")
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help="comma-separated, from: %(default)s")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    args.transports = [name.strip() for name in args.transports.split(",") if name.strip()]
    unknown = set(args.transports) - set(TRANSPORTS)
    if unknown:
        parser.error(f"unknown transports: {', '.join(sorted(unknown))}")
    if args.quick:
        args.duration, args.warmup, args.rounds = 1.0, 0.5, 1
    return args


def needed_servers(transports: list[str]) -> set[tuple[str, str]]:
    """The (side, mode) of every HTTP server the transports' cells need."""
    return {
        key
        for transport in transports
        if transport != "stdio"
        for key in (
            ("tandem", SERVER_MODES["tandem"][transport]),
            ("reference", SERVER_MODES["reference"][REFERENCE_STANDIN.get(transport, transport)]),
        )
    }


def http_command(side: str, mode: str, workspace: Path) -> list[str]:
    if side == "reference":
        return reference_command(mode, "--port", "0")
    return tandem_command(workspace, "--http", "--port", "0", *(["--stateless"] if mode == "stateless" else []))


def main() -> None:
    args = parse_args()
    timing = Timing(warmup_s=args.warmup, duration_s=args.duration, rounds=args.rounds)
    steal_before = cpu_steal()
    with tempfile.TemporaryDirectory() as directory, ExitStack() as stack:
        workspace = Path(directory)
        servers = {
            (side, mode): stack.enter_context(HttpServer(f"{side} {mode}", http_command(side, mode, workspace)))
            for side, mode in sorted(needed_servers(args.transports))
        }
        bench = Bench(servers, workspace, timing)
        rows = uvloop.run(measure_all(bench, args.transports))
    stolen, total = (after - before for after, before in zip(cpu_steal(), steal_before, strict=True))
    info = {**machine(), "cpu_steal_pct": 100 * stolen / total if total else 0.0}
    server_lines = {server.name: server.lines for server in servers.values()}
    server_lines |= {f"{side} stdio": lines for side, lines in bench.stdio_lines.items()}

    print(
        f"\n{info['cores']} cores ({info['cpu']}), Python {info['python']}, mcp {info['mcp']}, "
        f"tandem {info['tandem']}; CPU steal during the run {info['cpu_steal_pct']:.1f}%\n"
        f"best of {timing.rounds} round(s) of {timing.duration_s:g} s per cell after {timing.warmup_s:g} s warm-up; "
        "ratio = tandem/reference calls/s; errors summed over rounds\n"
    )
    print(table(rows))
    found = problems(rows, server_lines)
    if found:
        print("\nproblems:\n  " + "\n  ".join(found))
    if args.json:
        result = {
            "machine": info,
            "timing": asdict(timing),
            "rows": [
                {**asdict(row), "tandem": asdict(row.tandem), "reference": asdict(row.reference), "ratio": row.ratio}
                for row in rows
            ],
            "problems": found,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
