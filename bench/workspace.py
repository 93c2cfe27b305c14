"""The workspace toolset against plain tools, in the same run: ``search_files`` against the ``rg`` CLI on a large
tree, and ``read_file`` / ``edit_file`` through the MCP stack against plain Python file I/O.

    .venv/bin/python bench/workspace.py [--tree DIR] [--rounds N]

The tree defaults to this virtual environment's site-packages (tens of thousands of files). Tandem's calls go
through the SDK's client and server (the in-memory transport): arguments validated, the interceptor chain, the
tool, the result shaped and checked. Each figure is the best of ``--rounds`` runs; the ratio is Tandem / reference.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from inprocess import best, server
from tandem.toolsets.workspace.search import ripgrep

SEARCHES = [
    ("literal, every match", ["--fixed-strings", "asyncio.Semaphore"], {"literal": True, "max_results": 10_000}),
    ("regex, every match", [r"def __[a-z]+_hook__\("], {"max_results": 10_000}),
    ("word, every match", ["--fixed-strings", "Semaphore"], {"literal": True, "max_results": 10_000}),
    ("common word, first 200", ["import"], {"max_results": 200}),
]


async def bench_search(tree: Path, rounds: int) -> list[str]:
    rows = []
    rg = ripgrep()
    async with Client(server(tree, ["workspace"]).server, mode="legacy") as client:
        for label, rg_args, tool_args in SEARCHES:
            pattern = rg_args[-1]

            async def plain(rg_args: list[str] = rg_args) -> int:
                done = await anyio.run_process([rg, "--line-number", *rg_args, "."], cwd=tree, check=False)
                return done.stdout.count(b"\n")

            async def tandem(pattern: str = pattern, tool_args: dict[str, Any] = tool_args) -> int:
                result = await client.call_tool("search_files", {"pattern": pattern, **tool_args})
                assert not result.is_error, result.content[0].text
                return len(result.structured_content["matches"])

            reference_s, lines = await best(rounds, plain)
            tandem_s, matches = await best(rounds, tandem)
            rows.append(
                f"search {label:24s} | rg {reference_s * 1000:8.1f} ms ({lines} lines) | search_files "
                f"{tandem_s * 1000:8.1f} ms ({matches} matches) | ratio {tandem_s / reference_s:5.2f}"
            )
    return rows


async def bench_files(rounds: int, calls: int = 300) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        target = root / "module.py"
        target.write_text("".join(f"value_{i} = {i}\n" for i in range(500)))
        async with Client(server(root, ["workspace"]).server, mode="legacy") as client:

            async def timed(fn: Callable[[int], Awaitable[Any]]) -> list[float]:
                samples = []
                for i in range(calls):
                    started = time.perf_counter()
                    await fn(i)
                    samples.append(time.perf_counter() - started)
                return samples

            async def read_tool(i: int) -> None:
                result = await client.call_tool("read_file", {"path": "module.py"})
                assert not result.is_error

            async def read_plain(i: int) -> None:
                text = target.read_text()
                "\n".join(f"{n}\t{line}" for n, line in enumerate(text.splitlines(), 1))

            counter = {"tool": 1, "plain": 2}  # the current values of value_1 and value_2 in the file

            async def edit_tool(i: int) -> None:
                n = counter["tool"]
                edit = {"old": f"value_1 = {n}\n", "new": f"value_1 = {n + 1}\n"}
                result = await client.call_tool("edit_file", {"path": "module.py", "edits": [edit]})
                assert not result.is_error, result.content[0].text
                counter["tool"] = n + 1

            async def edit_plain(i: int) -> None:
                n = counter["plain"]
                text = target.read_text()
                target.write_text(text.replace(f"value_2 = {n}\n", f"value_2 = {n + 1}\n"))
                counter["plain"] = n + 1

            for label, tool, plain in [("read_file", read_tool, read_plain), ("edit_file", edit_tool, edit_plain)]:
                best_tool: list[float] = []
                best_plain: list[float] = []
                for _ in range(rounds):
                    samples = await timed(tool)
                    if not best_tool or statistics.median(samples) < statistics.median(best_tool):
                        best_tool = samples
                    samples = await timed(plain)
                    if not best_plain or statistics.median(samples) < statistics.median(best_plain):
                        best_plain = samples
                tool_q = statistics.quantiles(best_tool, n=20)
                plain_q = statistics.quantiles(best_plain, n=20)
                ratio = statistics.median(best_tool) / statistics.median(best_plain)
                rows.append(
                    f"{label:9s} (500 lines) | MCP p50 {statistics.median(best_tool) * 1000:6.2f} ms "
                    f"p95 {tool_q[18] * 1000:6.2f} ms | plain Python p50 {statistics.median(best_plain) * 1000:6.3f} "
                    f"ms p95 {plain_q[18] * 1000:6.3f} ms | ratio {ratio:5.1f}"
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=Path(sysconfig.get_paths()["purelib"]))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = subprocess.run([ripgrep(), "--files", str(args.tree)], capture_output=True, check=False).stdout.count(b"\n")
    print(f"Python {sys.version.split()[0]}; tree {args.tree} ({files} files); best of {args.rounds} rounds\n")

    async def run() -> None:
        for row in await bench_search(args.tree, args.rounds):
            print(row)
        for row in await bench_files(args.rounds):
            print(row)

    anyio.run(run)


if __name__ == "__main__":
    main()
