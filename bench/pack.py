"""Packing a real repository with Repomix and with ``tandem pack`` in the same run: wall time and token totals side
by side, and each tool's reported total against tiktoken's count of the file it wrote.

    npm install --prefix /tmp/repomix repomix          # once (Node 18+)
    .venv/bin/python bench/pack.py --repomix /tmp/repomix/node_modules/.bin/repomix [--repo DIR] [--rounds 3]

Both run as a user runs them, as commands: XML output, their default ignores and .gitignore, their secret checks on
(Repomix: secretlint; Tandem: detect-secrets) unless ``--no-secret-check``, tokens counted with o200k_base.
Rounds alternate which goes first; the table shows each tool's fastest round (interference only ever slows a
round down) and the ratio.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tandem.core.tokens import count_tokens  # noqa: E402


def _timed(name: str, argv: list[str], repo: Path, total: str) -> tuple[float, int | None]:
    """Run ``argv`` in ``repo``: seconds taken, and the total tokens its output reports (regex ``total``)."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr[-2000:] or done.stdout[-2000:]}")
    reported = re.search(total, re.sub(r"\x1b\[[0-9;]*m", "", done.stdout))
    return elapsed, int(reported.group(1).replace(",", "")) if reported else None


def run_repomix(repomix: str, repo: Path, out: Path, secrets: bool) -> tuple[float, int | None]:
    flags = [] if secrets else ["--no-security-check"]
    argv = [repomix, "--style", "xml", "--output", str(out), "--token-count-encoding", "o200k_base", *flags, "."]
    return _timed("repomix", argv, repo, r"Total Tokens:\s*([\d,]+)")


def run_tandem(repo: Path, out: Path, secrets: bool) -> tuple[float, int | None]:
    flags = [] if secrets else ["--no-secret-scan"]
    argv = [sys.executable, "-m", "tandem", "pack", "--workspace", str(repo), "--output", str(out), *flags]
    return _timed("tandem pack", argv, repo, r": ([\d,]+) tokens \(o200k_base\)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repomix", required=True, help="The repomix command.")
    parser.add_argument("--repo", type=Path, default=ROOT, help="The repository to pack (default: Tandem's own).")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-secret-check", action="store_true", help="Both without their secret checks.")
    args = parser.parse_args()
    secrets = not args.no_secret_check
    times: dict[str, list[float]] = {"repomix": [], "tandem": []}
    reported: dict[str, int | None] = {}
    counted: dict[str, int] = {}
    files: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as scratch:
        outputs = {"repomix": Path(scratch) / "repomix.xml", "tandem": Path(scratch) / "tandem.xml"}
        for round_ in range(args.rounds):
            order = ["repomix", "tandem"] if round_ % 2 == 0 else ["tandem", "repomix"]
            for name in order:
                if name == "repomix":
                    elapsed, total = run_repomix(args.repomix, args.repo, outputs[name], secrets)
                else:
                    elapsed, total = run_tandem(args.repo, outputs[name], secrets)
                times[name].append(elapsed)
                reported[name] = total
                print(f"round {round_ + 1}: {name} {elapsed:.2f} s", file=sys.stderr)
        for name, out in outputs.items():
            text = out.read_text(encoding="utf-8")
            counted[name] = count_tokens(text)
            files[name] = len(re.findall(r'(?m)^<file path="', text))
    print(f"repository: {args.repo}; {args.rounds} rounds; secret checks {'on' if secrets else 'off'}\n")
    print(f"{'':<8} {'best s':>7} {'median s':>9} {'files':>6} {'reported tokens':>16} {'tiktoken of output':>19}")
    for name in ("repomix", "tandem"):
        print(
            f"{name:<8} {min(times[name]):>7.2f} {statistics.median(times[name]):>9.2f} {files[name]:>6} "
            f"{reported[name] or '?':>16} {counted[name]:>19}"
        )
    ratio = min(times["repomix"]) / min(times["tandem"])
    print(f"\ntandem is {ratio:.2f}x as fast as repomix (best rounds); ", end="")
    agree = {name: reported[name] == counted[name] for name in counted}
    print(", ".join(f"{n} reported {'==' if ok else '!='} tiktoken" for n, ok in agree.items()))


if __name__ == "__main__":
    main()
