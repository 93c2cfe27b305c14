"""Packing a real repository with Repomix and with Tandem in the same run: wall time and token totals side by side,
and each tool's reported total against tiktoken's own count of the text it produced.

    npm install --prefix /tmp/repomix repomix          # once (Node 18+)
    .venv/bin/python bench/pack.py --repomix /tmp/repomix/node_modules/.bin/repomix [--repo DIR] [--rounds 3]

Two ways each tool is used, both measured:

- as a command (``repomix`` against ``tandem pack``), a fresh process per pack. Tandem three times: a *first
  pack*, with its result cache off (every token count and secret scan computed, as on a repository it has never
  seen); a *repeat pack* of files packed before; and a pack *after an edit*, one line added to one file first (as
  when an assistant packs again while it works).
- as an MCP server over stdio (``repomix --mcp`` against ``tandem serve --toolsets context``), both started
  afresh every round with nothing cached (Tandem's result cache empty) and ``pack_codebase`` called as soon as
  the client has connected: the first call, a later call, and a call after an edit.

Both pack a copy of the repository (the files git lists, .gitignore included), so the edits never touch it.

XML output, each tool's default ignores and .gitignore, secret checks on (Repomix: secretlint; Tandem:
detect-secrets) unless ``--no-secret-check`` (then the command-line table only: Repomix's MCP tool has no such
switch), tokens in o200k_base. Tandem's caches live in a temporary directory, never the user's. Rounds alternate
which tool goes first; a table shows each one's fastest round (interference only ever slows a round down).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tandem.core.tokens import encoding  # noqa: E402


def tiktoken_count(text: str) -> int:
    """tiktoken's own count (the encoder itself: no cache of Tandem's in the way)."""
    return len(encoding("o200k_base").encode_ordinary(text))


@dataclass
class Runs:
    name: str
    seconds: list[float] = field(default_factory=list)
    reported: int | None = None
    counted: int = 0
    files: int = 0

    def row(self, first_column: int) -> str:
        best, median = min(self.seconds), statistics.median(self.seconds)
        same = "==" if self.reported == self.counted else "!="
        return (
            f"{self.name:<{first_column}} {best:>7.2f} {median:>9.2f} {self.files:>6} "
            f"{self.reported or '?':>16} {same} {self.counted:<12}"
        )


def _files_in(text: str) -> int:
    return len(re.findall(r'(?m)^<file path="', text))


def _timed(argv: list[str], repo: Path, total: str, env: dict[str, str]) -> tuple[float, int | None]:
    """Run ``argv`` in ``repo``: seconds taken, and the total tokens its output reports (regex ``total``)."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=600, check=False, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:] or done.stdout[-2000:]}")
    reported = re.search(total, re.sub(r"\x1b\[[0-9;]*m", "", done.stdout))
    return elapsed, int(reported.group(1).replace(",", "")) if reported else None


def copy_of(repo: Path, into: Path) -> Path:
    """The files git lists in ``repo`` (tracked and untracked, not ignored), copied into a fresh repository."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    target = into / repo.name
    for name in filter(None, listed.split("\0")):
        source = repo / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    subprocess.run(["git", "init", "-q", str(target)], check=True)
    return target


class Editor:
    """Adds one line to one file of the copy before a pack *after an edit*: a file packed before, changed."""

    def __init__(self, repo: Path) -> None:
        self.path = repo / "README.md" if (repo / "README.md").is_file() else next(p for p in repo.rglob("*.py"))
        self.edits = 0

    def edit(self) -> None:
        self.edits += 1
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"\nedited by bench/pack.py ({self.edits})\n")


def commands(repomix: str, repo: Path, rounds: int, secrets: bool, cache: Path) -> list[Runs]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    first_env = {**env, "TANDEM_RESULT_CACHE": "off"}
    editor = Editor(repo)
    with tempfile.TemporaryDirectory() as scratch:
        out = {name: Path(scratch) / f"{name}.xml" for name in ("repomix", "first", "repeat", "edited")}
        repomix_argv = [repomix, "--style", "xml", "--output", str(out["repomix"]), "--token-count-encoding"]
        repomix_argv += ["o200k_base", *([] if secrets else ["--no-security-check"]), "."]

        def tandem_argv(target: Path) -> list[str]:
            argv = [sys.executable, "-m", "tandem", "pack", "--workspace", str(repo), "--output", str(target)]
            return argv + ([] if secrets else ["--no-secret-scan"])

        tandem_total = r": ([\d,]+) tokens \(o200k_base\)"
        steps = {
            "repomix": (repomix_argv, r"Total Tokens:\s*([\d,]+)", env),
            "first": (tandem_argv(out["first"]), tandem_total, first_env),
            "edited": (tandem_argv(out["edited"]), tandem_total, env),
            "repeat": (tandem_argv(out["repeat"]), tandem_total, env),
        }
        _timed(tandem_argv(out["repeat"]), repo, tandem_total, env)  # fills the cache for the repeat packs
        runs = {
            "repomix": Runs("repomix"),
            "first": Runs("tandem pack, first pack"),
            "repeat": Runs("tandem pack, repeat pack"),
            "edited": Runs("tandem pack, after an edit"),
        }
        for round_ in range(rounds):
            order = list(steps) if round_ % 2 == 0 else list(reversed(steps))
            for name in order:
                argv, total, step_env = steps[name]
                if name == "edited":
                    editor.edit()
                elapsed, runs[name].reported = _timed(argv, repo, total, step_env)
                runs[name].seconds.append(elapsed)
                print(f"round {round_ + 1}: {runs[name].name} {elapsed:.2f} s", file=sys.stderr)
        for name, target in out.items():
            text = target.read_text(encoding="utf-8")
            runs[name].counted, runs[name].files = tiktoken_count(text), _files_in(text)
    return list(runs.values())


async def _serve(name: str, params: StdioServerParameters, arguments: dict, repo: Path, runs: list[Runs]) -> None:
    """One server, started with nothing cached: its first call of ``pack_codebase``, a later call, and a call
    after an edit, into ``runs`` (first, later, edited)."""
    editor = Editor(repo)
    async with Client(params, mode="legacy") as client:
        for kind in runs:
            if kind is runs[2]:
                editor.edit()
            started = time.perf_counter()
            result = await client.call_tool("pack_codebase", arguments)
            elapsed = time.perf_counter() - started
            if result.is_error:
                raise SystemExit(f"{name} pack_codebase failed: {result.content}")
            texts = [getattr(item, "text", "") for item in result.content]
            if name.startswith("repomix"):
                answer = json.loads(json.loads(texts[0])["result"])
                output = await anyio.Path(answer["outputFilePath"]).read_text(encoding="utf-8")
                reported = answer["metrics"]["totalTokens"]
            else:  # the result holds the start of the pack; the whole of it is in the pack store
                pack_id, reported = result.structured_content["pack_id"], result.structured_content["total_tokens"]
                output = await (anyio.Path(repo) / ".tandem" / "packs" / f"{pack_id}.txt").read_text(encoding="utf-8")
            kind.seconds.append(elapsed)
            kind.reported, kind.counted, kind.files = reported, tiktoken_count(output), _files_in(output)
            print(f"{kind.name}: {elapsed:.2f} s", file=sys.stderr)


def servers(repomix: str, repo: Path, rounds: int, cache: Path) -> list[Runs]:
    """Each round starts both servers afresh (Tandem with an empty result cache), so that every round has a first
    call; the servers alternate which goes first."""
    node = str(Path(os.path.realpath(repomix)).parent)
    path = os.pathsep.join([os.environ.get("PATH", ""), node])
    names = ("repomix --mcp", "tandem serve")
    runs = {
        name: [Runs(f"{name}, first call"), Runs(f"{name}, later call"), Runs(f"{name}, after an edit")]
        for name in names
    }

    def parameters(name: str, round_: int) -> StdioServerParameters:
        home = cache / f"{round_}"
        home.mkdir(parents=True, exist_ok=True)
        if name.startswith("repomix"):
            return StdioServerParameters(command=repomix, args=["--mcp"], env={"PATH": path, "HOME": str(home)})
        return StdioServerParameters(
            command=sys.executable,
            args=["-m", "tandem", "serve", "--toolsets", "context", "--workspace", str(repo)],
            env={"PATH": path, "HOME": os.environ.get("HOME", ""), "XDG_CACHE_HOME": str(home)}
            | {"TANDEM_LOG_REQUESTS": "false"},
        )

    async def every_round() -> None:
        for round_ in range(rounds):
            for name in names if round_ % 2 == 0 else reversed(names):
                arguments = {"directory": str(repo), "style": "xml"} if name.startswith("repomix") else {"style": "xml"}
                await _serve(name, parameters(name, round_), arguments, repo, runs[name])

    anyio.run(every_round)
    return [*runs[names[0]], *runs[names[1]]]


def _table(title: str, runs: list[Runs]) -> None:
    width = max(len(r.name) for r in runs)
    print(f"\n{title:<{width}} {'best s':>7} {'median s':>9} {'files':>6} {'reported tokens':>16}    tiktoken's count")
    for r in runs:
        print(r.row(width))


def compiled_sources() -> None:
    """Tandem's modules compiled to bytecode first, as an installed package's are (pip compiles them; a source
    checkout where ``PYTHONDONTWRITEBYTECODE`` is set never would, and every process would compile them again)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repomix", required=True, help="The repomix command.")
    parser.add_argument("--repo", type=Path, default=ROOT, help="The repository to pack (default: Tandem's own).")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-secret-check", action="store_true", help="Both without their secret checks.")
    parser.add_argument("--only", choices=["commands", "servers"], help="Measure one of the two ways only.")
    args = parser.parse_args()
    secrets = not args.no_secret_check
    repo = args.repo.resolve()
    compiled_sources()
    with tempfile.TemporaryDirectory() as scratch:
        copy = copy_of(repo, Path(scratch) / "repository")
        cli_cache, server_cache = Path(scratch) / "cli-cache", Path(scratch) / "server-cache"
        cli = commands(args.repomix, copy, args.rounds, secrets, cli_cache) if args.only != "servers" else []
        served = []
        if secrets and args.only != "commands":
            served = servers(args.repomix, copy, args.rounds, server_cache)
    print(f"\nrepository: {repo}; {args.rounds} rounds; secret checks {'on' if secrets else 'off'}")
    if cli:
        _table("as commands", cli)
    if served:
        _table("as MCP servers (stdio)", served)
    print()
    if cli:
        reference = min(cli[0].seconds)
        for r in cli[1:]:
            print(f"{r.name}: {reference / min(r.seconds):.2f}x as fast as repomix (best rounds)")
    if served:
        half = len(served) // 2
        for ours, theirs in zip(served[half:], served[:half], strict=True):
            ratio = min(theirs.seconds) / min(ours.seconds)
            print(f"{ours.name}: {ratio:.2f}x as fast as {theirs.name.split(',')[0]}'s")
    disagree = [r.name for r in [*cli, *served] if r.reported != r.counted]
    print("reported totals differ from tiktoken's count of the output: " + (", ".join(disagree) or "none"))


if __name__ == "__main__":
    main()
