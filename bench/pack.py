"""Packing a real repository with Repomix and with Tandem in the same run: wall time and token totals side by side,
and each tool's reported total against tiktoken's own count of the text it produced.

    npm install --prefix /tmp/repomix repomix          # once (Node 18+)
    .venv/bin/python bench/pack.py --repomix /tmp/repomix/node_modules/.bin/repomix [--repo DIR] [--rounds 3]

Two ways each tool is used, both measured:

- as a command (``repomix`` against ``tandem pack``), a fresh process per pack, three times each: a *first pack*,
  with the tool's cache off (Tandem's result cache, Repomix's token-count cache: every count and secret check
  computed, as on a repository it has never seen); a *repeat pack* of files packed before, its cache holding them;
  and a pack *after an edit*, one line added to one file first (as when an assistant packs again while it works).
  Each tool packs its own copy, so that one's edits never reach the other's cache.
- as an MCP server over stdio (``repomix --mcp`` against ``tandem serve --toolsets context``), both started
  afresh every round with nothing cached (Tandem's result cache and Repomix's token-count cache empty) and
  ``pack_codebase`` called as soon as the client has connected (or ``--settle`` seconds later): the first call, a
  later call, a call after an edit, and the time from the server's start to its first answer (connecting
  included: a server that answers ``initialize`` sooner may meet its first call less ready).

Both pack copies of the repository (the files git lists, .gitignore included), so the edits never touch it.

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

TANDEM_DATA = ".tandem/**"
"""Tandem's data directory in the copy (its stored packs among them), which Repomix is told to leave out: a
repository whose .gitignore does not list it would have Repomix pack every pack Tandem stored there."""


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


KINDS = ("first pack", "repeat pack", "after an edit")


def commands(repomix: str, copies: dict[str, Path], rounds: int, secrets: bool, cache: Path) -> list[Runs]:
    """Each tool packs its own copy (``copies``: "repomix" and "tandem"), so that one's edits are never the
    other's: a *first pack* with its cache off, a *repeat pack* with its cache holding every file, a pack *after
    an edit* to one file. Both tools keep caches between runs: Tandem its result cache, Repomix its token-count
    cache (both kept in ``cache`` here)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "REPOMIX_TOKEN_CACHE_PATH": str(cache / "repomix.json")}
    cold = {"tandem": {"TANDEM_RESULT_CACHE": "off"}, "repomix": {"REPOMIX_TOKEN_CACHE": "0"}}
    totals = {"tandem": r": ([\d,]+) tokens \(o200k_base\)", "repomix": r"Total Tokens:\s*([\d,]+)"}
    with tempfile.TemporaryDirectory() as scratch:
        out = {(tool, kind): Path(scratch) / f"{tool}-{kind.replace(' ', '-')}.xml" for tool in cold for kind in KINDS}

        def argv(tool: str, target: Path) -> list[str]:
            if tool == "repomix":
                options = ["--style", "xml", "--output", str(target), "--token-count-encoding", "o200k_base"]
                checks = [] if secrets else ["--no-security-check"]
                return [repomix, *options, "--ignore", TANDEM_DATA, *checks, "."]
            options = ["--workspace", str(copies[tool]), "--output", str(target)]
            return [sys.executable, "-m", "tandem", "pack", *options, *([] if secrets else ["--no-secret-scan"])]

        editors = {tool: Editor(copies[tool]) for tool in cold}
        names = {"tandem": "tandem pack", "repomix": "repomix"}
        runs = {(tool, kind): Runs(f"{names[tool]}, {kind}") for tool in cold for kind in KINDS}
        for tool in cold:  # fills each cache for the repeat packs
            _timed(argv(tool, out[tool, "repeat pack"]), copies[tool], totals[tool], env)
        for round_ in range(rounds):
            for tool in list(cold) if round_ % 2 == 0 else list(reversed(cold)):
                for kind in KINDS:
                    if kind == "after an edit":
                        editors[tool].edit()
                    step_env = {**env, **cold[tool]} if kind == "first pack" else env
                    elapsed, runs[tool, kind].reported = _timed(
                        argv(tool, out[tool, kind]), copies[tool], totals[tool], step_env
                    )
                    runs[tool, kind].seconds.append(elapsed)
                    print(f"round {round_ + 1}: {runs[tool, kind].name} {elapsed:.2f} s", file=sys.stderr)
        for key, target in out.items():
            text = target.read_bytes().decode("utf-8")  # as written: no newline translated
            runs[key].counted, runs[key].files = tiktoken_count(text), _files_in(text)
    return [runs[tool, kind] for tool in ("repomix", "tandem") for kind in KINDS]


async def _serve(
    name: str, params: StdioServerParameters, arguments: dict, repo: Path, runs: list[Runs], settle: float
) -> None:
    """One server, started with nothing cached: its first call of ``pack_codebase``, a later call, a call after
    an edit, and the time from its start to its first answer (the settling not counted), into ``runs``."""
    editor = Editor(repo)
    first, _later, edited, from_start = runs
    spawned = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        await anyio.sleep(settle)
        for kind in runs[:3]:
            if kind is edited:
                editor.edit()
            started = time.perf_counter()
            result = await client.call_tool("pack_codebase", arguments)
            elapsed = time.perf_counter() - started
            if result.is_error:
                raise SystemExit(f"{name} pack_codebase failed: {result.content}")
            texts = [getattr(item, "text", "") for item in result.content]
            if name.startswith("repomix"):
                answer = json.loads(json.loads(texts[0])["result"])
                output = (await anyio.Path(answer["outputFilePath"]).read_bytes()).decode("utf-8")
                reported = answer["metrics"]["totalTokens"]
            else:  # the result holds the start of the pack; the whole of it is in the pack store
                pack_id, reported = result.structured_content["pack_id"], result.structured_content["total_tokens"]
                stored = anyio.Path(repo) / ".tandem" / "packs" / f"{pack_id}.txt"
                output = (await stored.read_bytes()).decode("utf-8")
            answered = time.perf_counter() - spawned - settle
            counted, files = tiktoken_count(output), _files_in(output)
            for row, seconds in ((kind, elapsed), *([(from_start, answered)] if kind is first else [])):
                row.seconds.append(seconds)
                row.reported, row.counted, row.files = reported, counted, files
            print(f"{kind.name}: {elapsed:.2f} s", file=sys.stderr)


def servers(repomix: str, repo: Path, rounds: int, cache: Path, settle: float) -> list[Runs]:
    """Each round starts both servers afresh (with empty caches), so that every round has a first call, made
    ``settle`` seconds after the client connected; the servers alternate which goes first."""
    node = str(Path(os.path.realpath(repomix)).parent)
    path = os.pathsep.join([os.environ.get("PATH", ""), node])
    names = ("repomix --mcp", "tandem serve")
    runs = {
        name: [Runs(f"{name}, {kind}") for kind in ("first call", "later call", "after an edit", "start to 1st answer")]
        for name in names
    }

    def parameters(name: str, round_: int) -> StdioServerParameters:
        home = cache / f"{round_}"
        home.mkdir(parents=True, exist_ok=True)
        if name.startswith("repomix"):
            # Its token-count cache starts empty every round, as Tandem's result cache does.
            env = {"PATH": path, "HOME": str(home), "REPOMIX_TOKEN_CACHE_PATH": str(home / "repomix.json")}
            return StdioServerParameters(command=repomix, args=["--mcp"], env=env)
        return StdioServerParameters(
            command=sys.executable,
            args=["-m", "tandem", "serve", "--toolsets", "context", "--workspace", str(repo)],
            env={"PATH": path, "HOME": os.environ.get("HOME", ""), "XDG_CACHE_HOME": str(home)}
            | {"TANDEM_LOG_REQUESTS": "false"},
        )

    async def every_round() -> None:
        for round_ in range(rounds):
            for name in names if round_ % 2 == 0 else reversed(names):
                arguments = {"style": "xml"}
                if name.startswith("repomix"):
                    arguments |= {"directory": str(repo), "ignorePatterns": TANDEM_DATA}
                await _serve(name, parameters(name, round_), arguments, repo, runs[name], settle)

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
    parser.add_argument(
        "--settle", type=float, default=0.0, help="Seconds between a server's start and its first call (default 0)."
    )
    args = parser.parse_args()
    secrets = not args.no_secret_check
    repo = args.repo.resolve()
    compiled_sources()
    with tempfile.TemporaryDirectory() as scratch:
        copies = {name: copy_of(repo, Path(scratch) / name) for name in ("repomix", "tandem", "servers")}
        cli_cache, server_cache = Path(scratch) / "cli-cache", Path(scratch) / "server-cache"
        cli = commands(args.repomix, copies, args.rounds, secrets, cli_cache) if args.only != "servers" else []
        served = []
        if secrets and args.only != "commands":
            served = servers(args.repomix, copies["servers"], args.rounds, server_cache, args.settle)
    settled = f"; first server call {args.settle:g} s after connecting" if served else ""
    print(f"\nrepository: {repo}; {args.rounds} rounds; secret checks {'on' if secrets else 'off'}{settled}")
    if cli:
        _table("as commands", cli)
    if served:
        _table("as MCP servers (stdio)", served)
    print()
    for table in (cli, served):
        half = len(table) // 2
        for theirs, ours in zip(table[:half], table[half:], strict=True):
            best = min(theirs.seconds) / min(ours.seconds)
            median = statistics.median(theirs.seconds) / statistics.median(ours.seconds)
            print(f"{ours.name}: {best:.2f}x as fast as {theirs.name} (best rounds; medians {median:.2f}x)")
    disagree = [r.name for r in [*cli, *served] if r.reported != r.counted]
    print("reported totals differ from tiktoken's count of the output: " + (", ".join(disagree) or "none"))


if __name__ == "__main__":
    main()
