"""The development loop of one session: plan -> consult -> implement -> validate -> commit.

Validation is a fact about the working tree, not a claim: a passing ``run_all_validations`` records the tree's
fingerprint, and a commit counts as validated only while the tree still has that fingerprint. Each session's loop
is kept in a JSON file under the data directory, so it survives a restart of the server.
"""

from __future__ import annotations

import hashlib
import re
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
MAX_DIFF_BYTES = 256 * 1024 * 1024


class StepRecord(BaseModel):
    step: StepName
    at: float = Field(description="When the step was recorded (Unix time).")
    evidence: str = Field("", description="What shows the step was done: the plan, the advice, the change, ...")
    by: str = Field("sdlc_advance", description="The tool that recorded it.")


class Validation(BaseModel):
    ok: bool
    at: float
    fingerprint: str = Field(description="The working tree's fingerprint when the validation ran.")
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
        self.commits = [*self.commits, sha][-100:]
        self.cycle += 1
        self.done = []


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


async def fingerprint(repository: Repository) -> str:
    """A hash of the working tree as a commit would see it: the diff against HEAD (staged and unstaged, binary
    included) and the content of every untracked file that is not ignored."""
    head = await repository.run(["rev-parse", "--verify", "--quiet", "HEAD"], check=False, read_only=True)
    base = head.stdout.strip() if head.ok else EMPTY_TREE
    diff = await repository.run(
        ["diff", base, "--binary", "--no-color", "--no-ext-diff", "--no-textconv", "--full-index"],
        read_only=True,
        max_output_bytes=MAX_DIFF_BYTES,
    )
    others = await repository.run(
        ["ls-files", "--others", "--exclude-standard", "-z"], read_only=True, literal_pathspecs=False
    )
    untracked = sorted(p for p in others.stdout.split("\0") if p)
    digest = hashlib.sha256(f"{base}\n".encode())
    digest.update(diff.stdout.encode("utf-8", "surrogateescape"))
    if untracked:
        hashed = await repository.run(
            ["hash-object", "--no-filters", "--stdin-paths"], stdin="\n".join(untracked) + "\n", read_only=True
        )
        for path, blob in zip(untracked, hashed.stdout.split(), strict=False):
            digest.update(f"\0{path}\0{blob}".encode())
    return digest.hexdigest()[:32]


async def changed_files(repository: Repository) -> list[str]:
    """Paths (relative to the work tree) that differ from HEAD, untracked ones included."""
    head = await repository.run(["rev-parse", "--verify", "--quiet", "HEAD"], check=False, read_only=True)
    base = head.stdout.strip() if head.ok else EMPTY_TREE
    names = await repository.run(["diff", base, "--name-only", "-z", "--no-renames"], read_only=True)
    others = await repository.run(
        ["ls-files", "--others", "--exclude-standard", "-z"], read_only=True, literal_pathspecs=False
    )
    return sorted({p for p in (names.stdout + others.stdout).split("\0") if p})
