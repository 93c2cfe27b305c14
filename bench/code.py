"""The code toolset against its reference CLI, in the same run: ``ast_search`` (through the MCP stack) against the
``ast-grep`` CLI (the ``ast-grep-cli`` package) on a large tree, best of ``--rounds`` runs each.

    .venv/bin/python bench/code.py [--tree DIR] [--rounds 3]

The tree defaults to this Python's standard library (thousands of .py files). Each query runs over every Python
file of the tree; both sides return every match (``max_results`` is set above the match count). Counts may differ
by a file or two: the CLI skips sources that are not UTF-8, ast_search decodes them (``# -*- coding: latin-1 -*-``).
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from inprocess import best, server

QUERIES = [
    ("rare call", "subprocess.Popen($$$A)"),
    ("common raise", "raise ValueError($$$A)"),
    ("constructors", "def __init__(self, $$$A): $$$B"),
    ("lambdas", "lambda: $A"),
]
"""Each under 10,000 matches on the standard library (ast_search's ``max_results`` ceiling)."""


async def bench(tree: Path, rounds: int) -> list[str]:
    cli = str(Path(sys.executable).parent / "ast-grep")
    rows = []
    async with Client(server(tree, ["code"]).server, mode="legacy") as client:
        for label, pattern in QUERIES:

            async def reference(pattern: str = pattern) -> int:
                done = await anyio.run_process(
                    [cli, "run", "--pattern", pattern, "--lang", "python", "--json=stream", "."], cwd=tree, check=False
                )
                return sum(1 for line in done.stdout.splitlines() if line.strip())

            async def tandem(pattern: str = pattern) -> int:
                arguments: dict[str, Any] = {"pattern": pattern, "language": "python", "max_results": 10_000}
                result = await client.call_tool("ast_search", arguments)
                assert not result.is_error, result.content[0].text
                return len(result.structured_content["matches"])

            reference_s, expected = await best(rounds, reference)
            tandem_s, found = await best(rounds, tandem)
            rows.append(
                f"{label:13s} {pattern!r:34s} | ast-grep {reference_s * 1000:8.1f} ms ({expected} matches) | "
                f"ast_search {tandem_s * 1000:8.1f} ms ({found} matches) | ratio {tandem_s / reference_s:5.2f}"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = sum(1 for _ in args.tree.rglob("*.py"))
    print(f"Python {sys.version.split()[0]}; tree {args.tree} ({files} .py files); best of {args.rounds} rounds\n")
    for row in anyio.run(bench, args.tree, args.rounds):
        print(row)


if __name__ == "__main__":
    main()
