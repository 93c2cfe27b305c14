"""The ``lint`` tool against the ``ruff`` CLI it drives, in the same run, on a large tree: best of ``--rounds``
runs each, the ratio Tandem / ruff.

    .venv/bin/python bench/lint.py [--tree DIR] [--rounds 3]

The tree defaults to a copy of this Python's standard library (thousands of .py files), linted with the same rule
selection both ways. Both sides use ruff's cache, warmed by a first run that is not counted; ``--cold`` clears it
before every run instead. Tandem's side lists the files itself (``.gitignore`` respected, links not followed),
passes them to ruff, and parses its JSON report into findings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

import anyio
from mcp import Client

from inprocess import compare, server

RULES = '[tool.ruff.lint]\nselect = ["E", "F", "W", "B"]\n'


async def bench(tree: Path, rounds: int, cold: bool) -> list[str]:
    ruff = str(Path(sys.executable).parent / "ruff")
    cache = tree / ".ruff_cache"

    def clear() -> None:
        if cold:
            shutil.rmtree(cache, ignore_errors=True)

    async def reference() -> int:
        clear()
        done = await anyio.run_process(
            [ruff, "check", "--output-format", "json", "--no-fix", "."], cwd=tree, check=False
        )
        return len(json.loads(done.stdout))

    async with Client(server(tree, ["code"]).server, mode="legacy") as client:

        async def tandem() -> int:
            clear()
            result = await client.call_tool("lint", {})
            assert not result.is_error, result.content[0].text
            return sum(result.structured_content["counts"].values())

        await reference()  # warms ruff's cache (and the page cache) for both sides
        return [await compare(rounds, reference, tandem, ("ruff check", "lint"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=None, help="a tree to lint in place (default: a stdlib copy)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="clear ruff's cache before every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tree = args.tree
        if tree is None:
            tree = Path(scratch) / "stdlib"
            stdlib = Path(sysconfig.get_paths()["stdlib"])
            shutil.copytree(stdlib, tree, ignore=shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc"))
            (tree / "pyproject.toml").write_text(RULES)
        files = sum(1 for _ in tree.rglob("*.py"))
        print(f"ruff; tree {tree.name} ({files} .py files); best of {args.rounds} rounds; cache {not args.cold}\n")
        for row in anyio.run(bench, tree, args.rounds, args.cold):
            print(row)


if __name__ == "__main__":
    main()
