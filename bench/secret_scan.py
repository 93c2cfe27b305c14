"""``scan_secrets`` against the ``detect-secrets`` CLI it builds on, in the same run, on the same tree: best of
``--rounds`` runs each, the ratio Tandem / CLI.

    .venv/bin/python bench/secret_scan.py [--tree DIR] [--rounds 2]

The tree defaults to a copy of a few packages of this Python's standard library (email, json, http, xml, logging,
unittest). The CLI runs ``detect-secrets scan --all-files`` in the tree; Tandem lists the files itself, skips
binaries, and scans in its worker processes, its result cache off (every round scans every file, as the CLI does).
The CLI's baseline keeps one entry per distinct secret in a file; Tandem reports each line, so its count can be
higher.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

import anyio
from mcp import Client

from inprocess import compare, server

PACKAGES = ("email", "json", "http", "xml", "logging", "unittest")


async def bench(tree: Path, rounds: int) -> list[str]:
    cli = str(Path(sys.executable).parent / "detect-secrets")

    async def reference() -> int:
        done = await anyio.run_process([cli, "scan", "--all-files"], cwd=tree, check=True)
        return sum(len(found) for found in json.loads(done.stdout)["results"].values())

    async with Client(server(tree, ["code"]).server, mode="legacy") as client:

        async def tandem() -> int:
            result = await client.call_tool("scan_secrets", {"baseline": None})
            assert not result.is_error, result.content[0].text
            return sum(result.structured_content["counts"].values())

        await tandem()  # starts the worker processes
        return [await compare(rounds, reference, tandem, ("detect-secrets scan", "scan_secrets"))]


def main() -> None:
    os.environ["TANDEM_RESULT_CACHE"] = "off"  # findings kept from the round before would make later rounds free
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=None, help="a tree to scan in place (default: stdlib packages)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tree = args.tree
        if tree is None:
            tree = Path(scratch) / "stdlib"
            stdlib = Path(sysconfig.get_paths()["stdlib"])
            for package in PACKAGES:
                shutil.copytree(stdlib / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
        files = sum(1 for p in tree.rglob("*") if p.is_file())
        print(f"detect-secrets; tree {tree.name} ({files} files); best of {args.rounds} rounds\n")
        for row in anyio.run(bench, tree, args.rounds):
            print(row)


if __name__ == "__main__":
    main()
