"""The development loop of one session: plan -> consult -> implement -> validate -> commit.

Validation is a fact about the work tree, not a claim: a passing ``run_all_validations`` records each repository's
work tree as a git tree id (what ``git add -A`` would stage), and a commit goes ahead only when the tree it would
record is the one validated. Each session's loop
is kept in a JSON file under the data directory, so it survives a restart of the server.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from tandem.core import write_atomic
from tandem.core.git_command import Repository

StepName = Literal["plan", "consult", "implement", "validate", "commit"]
STEPS: tuple[StepName, ...] = ("plan", "consult", "implement", "validate", "commit")

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
"""git's empty tree: what a repository without commits is compared with."""


class StepRecord(BaseModel):
    step: StepName
    at: float = Field(description="When the step was recorded (Unix time).")
    evidence: str = Field("", description="What shows the step was done: the plan, the advice, the change, ...")
    by: str = Field("sdlc_advance", description="The tool that recorded it.")


class Validation(BaseModel):
    ok: bool
    at: float
    trees: dict[str, str] = Field(
        default_factory=dict,
        description="Each repository's work tree (by its path in the workspace) as a git tree id, as validated.",
    )
    tool: str = Field(description="The tool that validated (run_all_validations, coder.run_all_validations, ...).")
    summary: str = ""
    counts: bool = Field(True, description="False when it skipped steps or paths, so that it validates nothing.")
    why_not: str = ""


class Loop(BaseModel):
    """One session's loop: the steps of the current cycle, the last validation, and what happened before."""

    cycle: int = 1
    done: list[StepRecord] = Field(default_factory=list)
    validation: Validation | None = None
    warnings: list[str] = Field(default_factory=list, description="Guardrails passed over in warn mode.")
    commits: list[str] = Field(default_factory=list, description="Commits made in this session, newest last.")

    def last(self, step: StepName) -> StepRecord | None:
        return next((r for r in reversed(self.done) if r.step == step), None)

    def current(self) -> StepName | None:
        """The furthest step reached in this cycle, if any."""
        reached = [STEPS.index(r.step) for r in self.done]
        return STEPS[max(reached)] if reached else None

    def missing_before(self, step: StepName) -> list[StepName]:
        """The steps before ``step`` that this cycle has not recorded."""
        have = {r.step for r in self.done}
        return [s for s in STEPS[: STEPS.index(step)] if s not in have and s != "validate"]

    def record(self, step: StepName, evidence: str, by: str) -> StepRecord:
        # Going back to an earlier step (validation failed: implement again) drops the later ones of this cycle.
        index = STEPS.index(step)
        self.done = [r for r in self.done if STEPS.index(r.step) < index]
        entry = StepRecord(step=step, at=time.time(), evidence=evidence[:4000], by=by)
        self.done.append(entry)
        return entry

    def warn(self, message: str) -> None:
        self.warnings = [*self.warnings, message][-50:]

    def committed(self, sha: str) -> None:
        """A commit ends the cycle; its validation is spent with it."""
        self.commits = [*self.commits, sha][-100:]
        self.cycle += 1
        self.done = []
        self.validation = None


class LoopStore:
    """Each session's loop in ``<data dir>/sdlc/<session>.json``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, session: str | None) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", session or "default")[:120]
        return self.root / f"{name}.json"

    def load(self, session: str | None) -> Loop:
        path = self._file(session)
        try:
            return Loop.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return Loop()
        except (OSError, ValidationError, ValueError):
            # A damaged file (a crash mid-write cannot make one; a hand edit can) starts the loop afresh.
            return Loop(warnings=[f"the saved loop in {path.name} was unreadable and was started afresh"])

    def save(self, session: str | None, loop: Loop) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.root, self._file(session), loop.model_dump_json(indent=1).encode())


NESTED_SEARCH_DEPTH = 4
MAX_REPOSITORIES = 32
SKIPPED_DIRECTORIES = {"node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache", ".ruff_cache"}


def nested_repositories(root: Path, depth: int = NESTED_SEARCH_DEPTH) -> list[Path]:
    """Git work trees below ``root`` (not ``root`` itself), a few levels down, skipping dependency folders."""
    found: list[Path] = []

    def walk(directory: Path, level: int) -> None:
        if level > depth or len(found) >= MAX_REPOSITORIES:
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) or entry.name in SKIPPED_DIRECTORIES or entry.name == ".git":
                continue
            path = Path(entry.path)
            if (path / ".git").exists():
                found.append(path)
            walk(path, level + 1)

    walk(root, 1)
    return found


async def _scratch_index(repository: Repository, scratch: Path) -> dict[str, str]:
    """An index of one's own, started as a copy of the repository's (so that git's stat cache makes it quick)."""
    found = await repository.run(["rev-parse", "--git-path", "index"], read_only=True)
    real = Path(found.stdout.strip())
    real = real if real.is_absolute() else repository.root / real
    index = scratch / "index"
    env = {"GIT_INDEX_FILE": str(index)}
    if real.is_file():
        # copy2 keeps the index's mtime: git's check for "racily clean" entries (a file changed in the second the
        # index was written, same size) compares against it, and a fresh mtime would make git trust stale stats.
        shutil.copy2(real, index)
        # Entries marked assume-unchanged or skip-worktree would keep their staged content whatever the file holds.
        listed = await repository.run(["ls-files", "-v", "-z"], env=env, read_only=True, literal_pathspecs=False)
        marked = [e[2:] for e in listed.stdout.split("\0") if len(e) > 2 and (e[0].islower() or e[0] == "S")]
        if marked:
            await repository.run(
                ["update-index", "--no-assume-unchanged", "--no-skip-worktree", "-z", "--stdin"],
                stdin="\0".join(marked) + "\0",
                env=env,
            )
    return env


def _excludes(repository: Repository, paths: list[Path]) -> list[str]:
    """Pathspecs that leave ``paths`` (inside this repository) out."""
    specs = []
    for path in paths:
        try:
            relative = path.relative_to(repository.root).as_posix()
        except ValueError:
            continue
        if relative and relative != ".":
            specs.append(f":(exclude){relative}")
    return specs


async def worktree_tree(repository: Repository, leave_out: list[Path]) -> str:
    """The tree id of the work tree as ``git add -A`` would stage it (untracked files that are not ignored
    included), ``leave_out`` (Tandem's data, nested repositories) left out. Written with a scratch index: the
    repository's own index is not touched."""
    with tempfile.TemporaryDirectory(prefix="tandem-sdlc-") as scratch:
        env = await _scratch_index(repository, Path(scratch))
        # A tracked submodule stays in: add -A records the commit checked out in it. Untracked clones are left out.
        tracked = await repository.run(["ls-files", "-s", "-z"], env=env, read_only=True, literal_pathspecs=False)
        gitlinks = {e.split("\t", 1)[1] for e in tracked.stdout.split("\0") if e.startswith("160000 ")}
        excluded = [s for s in _excludes(repository, leave_out) if s.removeprefix(":(exclude)") not in gitlinks]
        if excluded:
            # git refuses a pathspec that names an ignored path, excluding ones too: leave those out, add -A does.
            names = [spec.removeprefix(":(exclude)") for spec in excluded]
            ignored = await repository.run(
                ["check-ignore", "--", *names], check=False, read_only=True, literal_pathspecs=False
            )
            skip = set(ignored.stdout.splitlines())
            excluded = [spec for spec, name in zip(excluded, names, strict=True) if name not in skip]
        specs = [".", *excluded]
        await repository.run(["add", "-A", "--", *specs], env=env, literal_pathspecs=False)
        tree = await repository.run(["write-tree"], env=env)
    return tree.stdout.strip()


async def commit_tree(repository: Repository, all_tracked: bool) -> str:
    """The tree id ``git commit`` (``-a`` with ``all_tracked``) would record now."""
    with tempfile.TemporaryDirectory(prefix="tandem-sdlc-") as scratch:
        env = await _scratch_index(repository, Path(scratch))
        if all_tracked:
            await repository.run(["add", "-u", "--", "."], env=env, literal_pathspecs=False)
        tree = await repository.run(["write-tree"], env=env)
    return tree.stdout.strip()


async def tree_difference(repository: Repository, committed: str, validated: str) -> list[tuple[str, str]]:
    """(status, path) of each path whose entry differs between the two trees: ``A`` only in the validated one,
    ``D`` only in the committed one, ``M`` in both with other content."""
    diff = await repository.run(
        ["diff-tree", "-r", "--no-renames", "--name-status", "-z", committed, validated], read_only=True
    )
    parts = [p for p in diff.stdout.split("\0") if p]
    return list(zip(parts[0::2], parts[1::2], strict=False))
