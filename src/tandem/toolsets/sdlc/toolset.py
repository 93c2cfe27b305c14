"""The ``sdlc`` tools and guardrails: ``sdlc_status``, ``sdlc_advance``, ``check_policy``, and the hooks that watch
validations and consultations and stand in front of every commit."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import shlex
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import unidiff
from pydantic import BaseModel, Field

from tandem.core import CallContext, PathRefused, ToolError, Toolset, text_files
from tandem.core.file_list import list_files
from tandem.core.git_command import Repository, open_repository
from tandem.core.registry import Tool
from tandem.core.sdlc_settings import Strictness
from tandem.toolsets.sdlc.loop import (
    EMPTY_TREE,
    STEPS,
    Loop,
    LoopStore,
    StepName,
    Validation,
    commit_tree,
    nested_repositories,
    tree_difference,
    worktree_tree,
)
from tandem.toolsets.sdlc.policy import Change, Policy, Violation, check, load_policy

if TYPE_CHECKING:
    from tandem.config import Settings

toolset = Toolset("sdlc", description="The development loop's state and the project's policy rules.")

MAX_CHECKED_FILES = 5_000
MAX_PENDING = 64
MAX_DIFF_BYTES = 32 * 1024 * 1024
VALIDATORS = ("run_all_validations", "*.run_all_validations")
COMMITS = ("git_commit", "*.git_commit")
CONSULTS = ("consult_specialist", "*.consult_specialist")


@dataclass
class Sdlc:
    """The service: the loops on disk, one lock per session, and the workspace's policy (re-read when changed)."""

    settings: Settings
    loops: LoopStore
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    pending: dict[int, dict[str, str]] = field(default_factory=dict)
    """The work trees each running validation started on, by its call."""
    _policy: tuple[tuple[Any, ...], Policy] | None = None

    def mode(self) -> Strictness:
        configured = self.settings.sdlc.mode
        if configured is not None:
            return configured
        return "enforce" if self.settings.profile == "orchestrator" else "warn"

    def lock(self, session: str | None) -> asyncio.Lock:
        return self.locks.setdefault(session or "default", asyncio.Lock())

    @contextlib.asynccontextmanager
    async def editing(self, ctx: CallContext) -> AsyncIterator[Loop]:
        """The loop of the call's session, under its lock; saved when the block ends without an error."""
        session = _session(ctx)
        async with self.lock(session):
            loop = self.loops.load(session)
            yield loop
            self.loops.save(session, loop)

    async def policy(self, ctx: CallContext) -> Policy:
        """The policy file's and the instruction files' rules, read again when one of them changes. An
        instruction file that links out of the workspace is left out (and said so in the policy's notes); a policy
        file that does is refused, as every path a tool reads."""
        sdlc = self.settings.sdlc
        policy_file = ctx.path(sdlc.policy_file)
        instructions: list[Path] = []
        skipped: list[str] = []
        for name in sdlc.instruction_files:
            try:
                path = ctx.path(name)
            except PathRefused:
                skipped.append(f"{name} is left out of the policy: it leads out of the workspace")
                continue
            if path.is_file():
                instructions.append(path)
        present = [p for p in [policy_file, *instructions] if p.is_file()]
        stamp = (*(p.stat().st_mtime_ns for p in present), len(present), *skipped)
        if self._policy is None or self._policy[0] != stamp:
            root = ctx.workspace.resolve()
            policy = await ctx.run_sync(lambda: load_policy(root, policy_file, instructions))
            policy.notes += skipped
            self._policy = (stamp, policy)
        return self._policy[1]

    def started(self, ctx: CallContext, trees: dict[str, str]) -> None:
        """Remember the work trees a validation started on, until it finishes."""
        self.pending[id(ctx)] = trees
        while len(self.pending) > MAX_PENDING:  # calls that failed never finish: forget the oldest
            self.pending.pop(next(iter(self.pending)))

    def finished(self, ctx: CallContext) -> dict[str, str] | None:
        return self.pending.pop(id(ctx), None)


@toolset.service
@contextlib.contextmanager
def _service(settings: Settings) -> Iterator[Sdlc]:
    yield Sdlc(settings, LoopStore(settings.data_path / "sdlc"))


def _sdlc(ctx: CallContext) -> Sdlc:
    return ctx.service("sdlc")


LOCAL_TRANSPORTS = ("stdio", "in-memory", "in-process")


def _session(ctx: CallContext) -> str | None:
    """Whose loop a call belongs to: a process-spawned client (stdio) has one loop per workspace, kept across
    restarts of its server; an HTTP, SSE or WebSocket session has its own."""
    return None if ctx.transport in LOCAL_TRANSPORTS else ctx.session_id


class StepState(BaseModel):
    step: StepName
    done: bool
    evidence: str = ""
    by: str = ""
    at: float | None = None


class ValidationState(BaseModel):
    ok: bool
    tool: str
    at: float
    counts: bool = Field(description="False when the run skipped steps or files, so it validates no change.")
    current: bool = Field(description="True while the working tree is as it was when the validation ran.")
    summary: str = ""
    why_not: str = ""


class LoopStatus(BaseModel):
    mode: Strictness
    cycle: int
    current: StepName | None = Field(description="The furthest step this cycle has reached.")
    steps: list[StepState]
    validation: ValidationState | None
    commit_allowed: bool = Field(description="Whether git_commit would go ahead now (policy aside).")
    next: str = Field(description="What to do next.")
    warnings: list[str] = Field(default_factory=list)
    commits: list[str] = Field(default_factory=list)
    notice: str = ""

    def summary(self) -> str:
        marks = " -> ".join(f"{s.step}{' [x]' if s.done else ''}" for s in self.steps)
        lines = [f"sdlc ({self.mode}), cycle {self.cycle}: {marks}"]
        if self.notice:
            lines.append(self.notice)
        if self.validation is not None:
            v = self.validation
            state = "passed" if v.ok else "FAILED"
            freshness = "current" if v.current else "stale: the tree changed since"
            lines.append(f"last validation ({v.tool}) {state}, {freshness}" + (f"; {v.why_not}" if v.why_not else ""))
        lines.append(f"next: {self.next}")
        lines += [f"warning: {w}" for w in self.warnings[-5:]]
        return "\n".join(lines)


async def _repository(ctx: CallContext, path: str = ".") -> Repository:
    return await open_repository(ctx.commands, ctx.workspace, ctx.settings.git, path, ctx.roots)


async def _snapshot(ctx: CallContext) -> dict[str, str]:
    """Every repository of the workspace (the one at its root, and those below) as the tree id of its work tree,
    by the repository's path in the workspace; Tandem's data directory and nested repositories left out of each."""
    root = ctx.workspace.resolve()
    nested = await ctx.run_sync(lambda: nested_repositories(root))
    repositories: list[Repository] = []
    with contextlib.suppress(ToolError):
        repositories.append(await _repository(ctx))
    for path in nested:
        with contextlib.suppress(ToolError):
            repositories.append(await _repository(ctx, ctx.display(path)))
    trees: dict[str, str] = {}
    data = ctx.settings.data_path.resolve()
    for repository in repositories:
        key = ctx.display(repository.root) or "."
        if key not in trees:
            trees[key] = await worktree_tree(repository, [data, *nested])
    return trees


async def _validation_state(ctx: CallContext, loop: Loop) -> ValidationState | None:
    if loop.validation is None:
        return None
    v = loop.validation
    current = bool(v.trees) and v.trees == await _snapshot(ctx)
    return ValidationState(
        ok=v.ok, tool=v.tool, at=v.at, counts=v.counts, current=current, summary=v.summary, why_not=v.why_not
    )


def _validated(state: ValidationState | None) -> bool:
    return state is not None and state.ok and state.counts and state.current


def _next(loop: Loop, validation: ValidationState | None) -> str:
    have = {r.step for r in loop.done}
    if "plan" not in have:
        return "plan the change, then sdlc_advance(step='plan', evidence=<the plan>)"
    if "consult" not in have:
        return "consult a specialist (consult_specialist) or record advice with sdlc_advance(step='consult', ...)"
    if "implement" not in have:
        return "make the change, then sdlc_advance(step='implement', evidence=<what changed>)"
    if not _validated(validation):
        return "run run_all_validations (coder.run_all_validations through the orchestrator) until it passes"
    return "commit with git_commit: the change is validated"


async def _status(
    ctx: CallContext, sdlc: Sdlc, loop: Loop, notice: str = "", validation: ValidationState | None = None
) -> LoopStatus:
    """The loop as the client sees it; ``validation``: its state when the caller has just worked it out."""
    if validation is None:
        validation = await _validation_state(ctx, loop)
    steps = []
    for step in STEPS:
        record = loop.last(step)
        done = record is not None or (step == "validate" and _validated(validation))
        steps.append(
            StepState(
                step=step,
                done=done,
                evidence=record.evidence if record else (validation.summary if done and validation else ""),
                by=record.by if record else (validation.tool if done and validation else ""),
                at=record.at if record else (validation.at if done and validation else None),
            )
        )
    return LoopStatus(
        mode=sdlc.mode(),
        cycle=loop.cycle,
        current=loop.current(),
        steps=steps,
        validation=validation,
        commit_allowed=sdlc.mode() != "enforce" or _validated(validation),
        next=_next(loop, validation),
        warnings=loop.warnings[-10:],
        commits=loop.commits[-10:],
        notice=notice,
    )


@toolset.tool(read_only=True, title="SDLC status")
async def sdlc_status(ctx: CallContext) -> LoopStatus:
    """Where this session is in the loop plan -> consult -> implement -> validate -> commit: each step's evidence,
    the last validation and whether the working tree is still the one it validated, whether a commit would go
    ahead, and what to do next."""
    sdlc = _sdlc(ctx)
    return await _status(ctx, sdlc, sdlc.loops.load(_session(ctx)))


Evidence = Annotated[str, Field(max_length=4000, description="What shows the step is done: the plan, the advice, ...")]


@toolset.tool(destructive=False, idempotent=False, title="SDLC advance")
async def sdlc_advance(ctx: CallContext, step: StepName, evidence: Evidence = "") -> LoopStatus:
    """Record that ``step`` of the loop is done, with its evidence; going back to an earlier step starts it over
    from there (a failed validation sends you back to ``implement``).

    ``validate`` is recorded only by a passing run_all_validations on the current working tree, and ``commit`` only
    by git_commit: advancing to them checks, it does not claim. In enforce mode, a step whose earlier steps are not
    done is refused; in warn mode it goes ahead with a warning.
    """
    sdlc = _sdlc(ctx)
    async with sdlc.editing(ctx) as loop:
        mode = sdlc.mode()
        notice = ""
        if step == "commit":
            raise ToolError("the commit step is recorded by git_commit itself: commit when the change is validated")
        if step == "validate":
            state = await _validation_state(ctx, loop)
            if not _validated(state):
                raise ToolError(
                    "the change is not validated: run run_all_validations (coder.run_all_validations through the "
                    "orchestrator); a passing run on the current working tree records this step"
                )
            return await _status(ctx, sdlc, loop, "validation is current", state)
        if step in ("plan", "consult", "implement") and not evidence.strip():
            raise ToolError(f"say what shows the {step} step is done in 'evidence'")
        missing = loop.missing_before(step)
        if missing and mode == "enforce":
            raise ToolError(f"{step} comes after {', '.join(missing)}: record those first (sdlc_status says how)")
        if missing and mode == "warn":
            notice = f"warning: {step} recorded before {', '.join(missing)}"
            loop.warn(notice.removeprefix("warning: "))
        loop.record(step, evidence, "sdlc_advance")
    return await _status(ctx, sdlc, loop, notice)


class PolicyReport(BaseModel):
    ok: bool = Field(description="True when nothing violates a rule at error level.")
    violations: list[Violation]
    files: int = Field(description="How many files were checked.")
    rules: int = Field(description="How many rules the policy holds.")
    sources: list[str] = Field(description="Where the rules come from.")
    notes: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        errors = sum(v.level == "error" for v in self.violations)
        head = (
            f"policy: {errors} error(s), {len(self.violations) - errors} warning(s) in {self.files} file(s)"
            if self.violations
            else f"policy: {self.files} file(s) follow all {self.rules} rule(s)"
        )
        return "\n".join([head, *(v.line_text() for v in self.violations[:100]), *self.notes[:20]])


def _sources(policy: Policy) -> list[str]:
    named = {v.split(":")[0] for v in policy.sources.values() if v}
    named |= {r.source.split(":")[0] for r in [*policy.forbidden_patterns, *policy.required_tests] if r.source}
    return sorted(named)


def _read_text(ctx: CallContext, relative: str) -> str | None:
    """A workspace file's text; ``None`` when it is missing, binary, too large or not confined."""
    try:
        path = ctx.path(relative)
        return text_files.read_text(ctx.workspace, path, ctx.settings.max_file_bytes).text if path.is_file() else None
    except (ToolError, OSError):
        return None


def _changes_of_diff(ctx: CallContext, diff: str, *, in_workspace: bool, prefix: str = "") -> list[Change]:
    """The files of a unified diff; ``in_workspace``: the diff is the workspace's own, so its files' text is the
    text after the change (otherwise it is used only when the diff looks applied)."""
    try:
        patch = unidiff.PatchSet(diff)
    except unidiff.UnidiffParseError as exc:
        raise ToolError(f"the diff is not a unified diff: {exc}") from None
    if diff.strip() and not len(patch):
        raise ToolError("the diff is not a unified diff: it names no file (no '--- a/...' / '+++ b/...' headers)")
    changes = []
    for patched in patch:
        path = patched.source_file if patched.is_removed_file else patched.target_file
        relative = prefix + path.removeprefix("a/").removeprefix("b/")
        ctx.path(relative)  # a diff naming a path outside the workspace is refused, not checked
        added = {line.target_line_no: line.value.rstrip("\n") for hunk in patched for line in hunk if line.is_added}
        change = Change(relative, added, None, deleted=patched.is_removed_file)
        if not patched.is_removed_file:
            text = _read_text(ctx, relative)
            lines = text.splitlines() if text is not None else []
            applied = text is not None and all(0 < n <= len(lines) and lines[n - 1] == v for n, v in added.items())
            if in_workspace or applied:
                change.text = text
            elif len(patched):
                last = patched[-1]
                before = len(lines) if not patched.is_added_file else 0
                # The length after the change: the last hunk's end moves by what the hunks added less removed.
                growth = (last.target_start + last.target_length) - (last.source_start + last.source_length)
                change.lines = before + growth
        changes.append(change)
    return changes


async def _changes_of_paths(ctx: CallContext, paths: list[str]) -> list[Change]:
    listed, cut = await list_files(ctx.commands, [ctx.path(p) for p in paths], max_files=MAX_CHECKED_FILES)
    if cut:
        raise ToolError(f"more than {MAX_CHECKED_FILES} files under those paths: name fewer")
    changes = []
    for path in listed:
        relative = ctx.display(path)
        text = _read_text(ctx, relative)
        if text is not None:
            changes.append(Change(relative, None, text))
    return changes


async def _base(repository: Repository) -> str:
    head = await repository.run(["rev-parse", "--verify", "--quiet", "HEAD"], check=False, read_only=True)
    return head.stdout.strip() if head.ok else EMPTY_TREE


def _repository_prefix_of(repository: Repository, path: Path) -> str | None:
    """``path`` relative to the repository's root, with a trailing slash; ``None`` when it lies outside."""
    try:
        relative = path.resolve().relative_to(repository.root)
    except ValueError:
        return None
    return relative.as_posix().rstrip("/") + "/" if relative.parts else None


def _repository_prefix(ctx: CallContext, repository: Repository) -> str:
    shown = ctx.display(repository.root)
    return "" if shown in ("", ".") else shown.rstrip("/") + "/"


async def _working_changes(ctx: CallContext, repository: Repository) -> list[Change]:
    """What a commit of everything would hold: the diff against HEAD and the untracked files."""
    diff = await repository.run(
        ["diff", await _base(repository), "--no-color", "--no-ext-diff", "--no-renames", "-U0"],
        read_only=True,
        max_output_bytes=MAX_DIFF_BYTES,
    )
    prefix = _repository_prefix(ctx, repository)
    changes = _changes_of_diff(ctx, diff.stdout, in_workspace=True, prefix=prefix)
    others = await repository.run(
        ["ls-files", "--others", "--exclude-standard", "-z"], read_only=True, literal_pathspecs=False
    )
    for path in sorted(p for p in others.stdout.split("\0") if p)[:MAX_CHECKED_FILES]:
        text = _read_text(ctx, prefix + path)
        if text is not None:
            changes.append(Change(prefix + path, None, text))
    return changes


async def _staged_changes(
    ctx: CallContext, repository: Repository, all_tracked: bool, amend: bool = False
) -> list[Change]:
    """What ``git commit`` (``-a`` with ``all_tracked``; ``--amend``: against the commit before HEAD) would record,
    each file's text as it would be committed."""
    base = await _base(repository)
    if amend and base != EMPTY_TREE:
        parent = await repository.run(["rev-parse", "--verify", "--quiet", "HEAD^"], check=False, read_only=True)
        base = parent.stdout.strip() if parent.ok else EMPTY_TREE
    args = ["diff", base] if all_tracked else ["diff", "--cached", base]
    diff = await repository.run(
        [*args, "--no-color", "--no-ext-diff", "--no-renames", "-U0"], read_only=True, max_output_bytes=MAX_DIFF_BYTES
    )
    prefix = _repository_prefix(ctx, repository)
    changes = _changes_of_diff(ctx, diff.stdout, in_workspace=all_tracked, prefix=prefix)
    if not all_tracked:
        for change in changes:
            if change.deleted:
                continue
            staged = await repository.run(["show", f":{change.path.removeprefix(prefix)}"], check=False, read_only=True)
            change.text = staged.stdout if staged.ok else None
    return changes


async def _existing(ctx: CallContext) -> list[str]:
    listed, _ = await list_files(ctx.commands, [ctx.workspace], max_files=200_000)
    return [ctx.display(p) for p in listed]


def _report(policy: Policy, changes: list[Change], violations: list[Violation]) -> PolicyReport:
    return PolicyReport(
        ok=not any(v.level == "error" for v in violations),
        violations=violations,
        files=len(changes),
        rules=policy.rule_count(),
        sources=_sources(policy),
        notes=[*policy.notes, *(n for c in changes for n in c.notes)],
    )


@toolset.tool(read_only=True, title="Check policy")
async def check_policy(
    ctx: CallContext,
    diff: Annotated[str | None, Field(max_length=MAX_DIFF_BYTES, description="A unified diff to check.")] = None,
    paths: Annotated[list[str] | None, Field(description="Files or directories to check whole.")] = None,
    message: Annotated[str | None, Field(max_length=100_000, description="A commit message to check.")] = None,
) -> PolicyReport:
    """Check a change against the project's policy: ``.tandem/policy.toml`` (forbidden paths, forbidden patterns as
    regular expressions or ast-grep patterns, a maximum file length, tests required for changed modules, the commit
    message format) and the rules CLAUDE.md / AGENTS.md state in a recognisable form.

    Give a unified ``diff`` (its added lines are checked), or ``paths`` (whole files), or neither: the working
    tree's change against HEAD, untracked files included. ``message`` checks a commit message too. Each violation
    names its file, line, rule and where the rule is stated. git_commit refuses a change with an error-level
    violation when the sdlc mode is enforce.
    """
    if diff is not None and paths is not None:
        raise ToolError("give diff or paths, not both")
    sdlc = _sdlc(ctx)
    policy = await sdlc.policy(ctx)
    if diff is not None:
        changes = _changes_of_diff(ctx, diff, in_workspace=False)
    elif paths is not None:
        if not paths:
            raise ToolError("paths is empty: name files or directories, or leave it out to check the working tree")
        changes = await _changes_of_paths(ctx, paths)
    else:
        changes = await _working_changes(ctx, await _repository(ctx))
    existing = await _existing(ctx) if policy.required_tests else []
    violations = await ctx.run_sync(lambda: check(policy, changes, existing, message))
    return _report(policy, changes, violations)


def _structured(result: Any) -> dict[str, Any] | None:
    """The structured answer of a tool result, however it came: a model, a ToolResult, an upstream's dict."""
    if isinstance(result, BaseModel):
        return result.model_dump()
    for name in ("structured", "structured_content", "structuredContent"):
        value = getattr(result, name, None)
        if isinstance(value, dict):
            return value
    if isinstance(result, dict):
        inner = result.get("structuredContent") or result.get("structured_content")
        return inner if isinstance(inner, dict) else result
    return None


def _is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", False) or (isinstance(result, dict) and result.get("isError")))


def _validation_outcome(sdlc: Sdlc, arguments: dict[str, Any], result: Any) -> tuple[bool, str, str]:
    """(passed, summary, why it does not count) of a run_all_validations result."""
    report = _structured(result)
    ok = not _is_error(result) and bool(report and report.get("ok"))
    steps = (report or {}).get("steps") or []
    skipped = [s.get("name") for s in steps if isinstance(s, dict) and s.get("status") == "skipped"]
    summary = "; ".join(f"{s.get('name')} {s.get('status')}" for s in steps if isinstance(s, dict))
    not_allowed = [s for s in skipped if s not in sdlc.settings.sdlc.may_skip]
    if not_allowed:
        allowed = ", ".join(sdlc.settings.sdlc.may_skip) or "none"
        return ok, summary, f"it skipped {', '.join(not_allowed)} ([sdlc] may_skip allows {allowed})"
    if arguments.get("paths"):
        return ok, summary, "it checked only some paths; validate the whole workspace (no paths) to validate the change"
    return ok, summary, ""


def _task_outcome(arguments: dict[str, Any], result: Any) -> tuple[bool, str, str]:
    """(passed, summary, why it does not count) of a run_task of a validation recipe."""
    run = _structured(result) or {}
    ok = not _is_error(result) and run.get("failed") is False
    summary = f"just {arguments.get('name')}: " + ("passed" if ok else f"failed (exit {run.get('exit_code')})")
    why_not = "it ran with arguments; a validation recipe counts only as it is" if arguments.get("args") else ""
    return ok, summary, why_not


async def _record_validation(
    tool_name: str, outcome: tuple[bool, str, str], ctx: CallContext, before: dict[str, str] | None
) -> None:
    """Record a validation's outcome with the work trees it ran on; ``before``: the trees when it started (a tree
    that changed while it ran was not what it checked)."""
    sdlc = _sdlc(ctx)
    ok, summary, why_not = outcome
    trees = await _snapshot(ctx)
    if not trees and not why_not:
        why_not = "there is no git repository in the workspace to tie it to"
    if before is not None and before != trees and not why_not:
        why_not = "the work tree changed while it ran; run it again"
    async with sdlc.editing(ctx) as loop:
        loop.validation = Validation(
            ok=ok,
            at=time.time(),
            trees=trees,
            tool=tool_name,
            summary=summary[:2000] or ("passed" if ok else "failed"),
            counts=not why_not,
            why_not=why_not,
        )
        if ok and not why_not:
            loop.record("validate", summary[:2000], tool_name)


@toolset.before(*VALIDATORS, "run_task", "*.run_task")
async def _validation_starts(tool: Tool, arguments: dict[str, Any], ctx: CallContext) -> None:
    sdlc = _sdlc(ctx)
    if tool.name.endswith("run_task") and arguments.get("name") not in sdlc.settings.sdlc.validation_tasks:
        return
    with contextlib.suppress(ToolError):
        sdlc.started(ctx, await _snapshot(ctx))


@toolset.after(*VALIDATORS)
async def _validation_ran(tool: Tool, arguments: dict[str, Any], result: Any, ctx: CallContext) -> None:
    sdlc = _sdlc(ctx)
    await _record_validation(tool.name, _validation_outcome(sdlc, arguments, result), ctx, sdlc.finished(ctx))


@toolset.after("run_task", "*.run_task")
async def _task_ran(tool: Tool, arguments: dict[str, Any], result: Any, ctx: CallContext) -> None:
    sdlc = _sdlc(ctx)
    if arguments.get("name") in sdlc.settings.sdlc.validation_tasks:
        outcome = _task_outcome(arguments, result)
        await _record_validation(f"{tool.name}:{arguments['name']}", outcome, ctx, sdlc.finished(ctx))


@toolset.after(*CONSULTS)
async def _consulted(tool: Tool, arguments: dict[str, Any], result: Any, ctx: CallContext) -> None:
    if _is_error(result):
        return
    answer = _structured(result) or {}
    persona = answer.get("persona") or arguments.get("persona") or "a specialist"
    evidence = f"{persona}: {str(arguments.get('question', ''))[:500]}"
    sdlc = _sdlc(ctx)
    async with sdlc.editing(ctx) as loop:
        if loop.last("plan") is not None or sdlc.mode() == "off":
            loop.record("consult", evidence, tool.name)


async def _unvalidated(
    ctx: CallContext, loop: Loop, repository: Repository, all_tracked: bool
) -> tuple[str | None, str | None]:
    """Why the commit would record a tree no passing validation checked (``None`` when one did), and the id of the
    tree it would record, once known."""
    v = loop.validation
    if v is None:
        return "nothing was validated in this session", None
    if not v.ok:
        return f"the last validation ({v.tool}) failed", None
    if not v.counts:
        return f"the last validation ({v.tool}) does not count: {v.why_not}", None
    key = ctx.display(repository.root) or "."
    validated = v.trees.get(key)
    if validated is None:
        return f"the last validation ({v.tool}) did not see the repository at {key!r}", None
    committed = await commit_tree(repository, all_tracked)
    return await _not_validated(ctx, v.tool, repository, committed, validated), committed


async def _differences(ctx: CallContext, repository: Repository, one: str, other: str) -> list[tuple[str, str]]:
    """``tree_difference`` of the two trees, Tandem's own data directory left out (as of every snapshot)."""
    data = _repository_prefix_of(repository, ctx.settings.data_path)
    return [
        (status, path)
        for status, path in await tree_difference(repository, one, other)
        if data is None or not path.startswith(data)
    ]


async def _not_validated(
    ctx: CallContext, tool: str, repository: Repository, committed: str, validated: str
) -> str | None:
    """Why recording tree ``committed`` records something the validation of tree ``validated`` did not check;
    ``None`` when nothing."""
    if committed == validated:
        return None
    differences = await _differences(ctx, repository, committed, validated)
    if not differences:
        return None
    # Untracked files the commit leaves out were there when it validated, and are not part of what it records.
    only_validated = [path for status, path in differences if status == "A"]
    in_head = set()
    if only_validated:
        listed = await repository.run(
            ["ls-tree", "-r", "-z", "--name-only", await _base(repository), "--", *only_validated], read_only=True
        )
        in_head = {p for p in listed.stdout.split("\0") if p}
    left = [(status, path) for status, path in differences if status != "A" or path in in_head]
    if not left:
        return None
    shown = ", ".join(f"{path} ({'not validated' if status != 'A' else 'left out'})" for status, path in left[:10])
    return f"the commit would record a tree the last passing validation ({tool}) did not check: {shown}" + (
        f" and {len(left) - 10} more" if len(left) > 10 else ""
    )


async def _guard_commit(tool_name: str, arguments: dict[str, Any], ctx: CallContext) -> None:
    sdlc = _sdlc(ctx)
    mode = sdlc.mode()
    if mode == "off":
        return
    problems: list[str] = []
    try:
        repository = await _repository(ctx, str(arguments.get("repo") or "."))
        all_tracked = bool(arguments.get("all"))
        why, tree = await _unvalidated(ctx, sdlc.loops.load(_session(ctx)), repository, all_tracked)
        if why is None and tree is not None:
            _approved.set(await _approving(repository, tree, bool(arguments.get("amend"))))
        if why is not None:
            problems.append(
                f"{why}; run run_all_validations (coder.run_all_validations through the orchestrator) and commit "
                "when it passes"
            )
        policy = await sdlc.policy(ctx)
        if policy.rule_count():
            changes = await _staged_changes(ctx, repository, all_tracked, bool(arguments.get("amend")))
            existing = await _existing(ctx) if policy.required_tests else []
            message = str(arguments.get("message", ""))
            violations = await ctx.run_sync(lambda: check(policy, changes, existing, message))
            errors = [v for v in violations if v.level == "error"]
            if errors:
                problems.append(
                    "the change breaks the project's policy:\n" + "\n".join(f"  {v.line_text()}" for v in errors[:30])
                )
    except Exception as exc:  # what cannot be checked is refused in enforce mode, and only warned of in warn mode
        if mode == "enforce":
            if not isinstance(exc, ToolError):
                raise
            raise ToolError(f"commit refused (sdlc mode enforce): the guard could not check it: {exc}") from None
        problems.append(f"the guard could not check the commit: {exc}")
    if not problems:
        return
    text = f"{tool_name}: " + "\n".join(problems)
    if mode == "enforce":
        raise ToolError(f"commit refused (sdlc mode enforce). {text}")
    async with sdlc.editing(ctx) as loop:
        loop.warn(f"committed anyway (warn mode): {text}"[:1000])
    await ctx.log("warning", f"sdlc: committing in warn mode although {text}", "tandem.sdlc")


READ_ONLY_GIT = {
    "status", "log", "diff", "show", "blame", "grep", "ls-files", "ls-tree", "rev-parse", "rev-list", "describe",
    "shortlog", "cat-file", "show-ref", "for-each-ref", "whatchanged", "help", "version", "--version", "--help",
}  # fmt: skip
"""git subcommands execute_command may run in enforce mode: the ones that read. Anything else (commit, merge, an
alias, config that makes one) goes through the git toolset, where the guard stands."""
_GIT_OPTIONS_WITH_VALUE = {"-c", "-C", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env"}
_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "{", "}", "!"}
_PREFIXES = {"env", "command", "exec", "nice", "nohup", "sudo", "time", "xargs", "timeout", "then", "do", "else"}


def _git_subcommand(argv: list[str]) -> str | None:
    """The subcommand of a ``git ...`` command line, its global options skipped; ``""`` for a bare ``git``."""
    words = iter(argv[1:])
    for word in words:
        if word in _GIT_OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-") or word in ("--version", "--help"):
            return word
    return ""


def _git_calls(words: list[str], depth: int = 0) -> list[str]:
    """The subcommands of every git a command line runs: the first word, a word after a separator or a prefix
    such as ``env`` or ``xargs``, and what ``sh -c '...'`` runs."""
    found: list[str] = []
    position = True
    for index, word in enumerate(words):
        if word in _SEPARATORS:
            position = True
            continue
        if position and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word, re.DOTALL):
            continue  # VAR=value before the program
        if position and Path(word).name in ("git", "git.exe"):
            found.append(_git_subcommand(words[index:]) or "")
        if depth < 3 and " " in word:  # sh -c 'git commit', bash -lc "..."
            found += _git_calls(_words(word), depth + 1)
        position = word in _PREFIXES or (position and word.startswith("-"))
    return found


def _words(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:
        return command.split()


@toolset.before("execute_command", "*.execute_command")
async def _before_command(tool: Tool, arguments: dict[str, Any], ctx: CallContext) -> None:
    """In enforce mode execute_command may run git only to read: commits go through git_commit and its guard.
    (Defence in depth: a program the command policy allows can still run git itself; that policy is the boundary.)"""
    if _sdlc(ctx).mode() != "enforce":
        return
    argv = arguments.get("argv")
    command = arguments.get("command")
    if isinstance(argv, list):
        words = [str(a) for a in argv]
    elif isinstance(command, str):
        words = _words(command)
    else:
        return
    writing = sorted({sub or "git" for sub in _git_calls(words) if sub not in READ_ONLY_GIT})
    if writing:
        raise ToolError(
            f"refused (sdlc mode enforce): execute_command runs git only to read (not {', '.join(writing)}); "
            "commits go through git_commit, which checks that the change was validated and follows the policy"
        )


@toolset.before(*COMMITS)
async def _before_commit(tool: Tool, arguments: dict[str, Any], ctx: CallContext) -> None:
    _approved.set(None)  # none from an earlier call of this task whose after hooks never ran
    await _guard_commit(tool.name, arguments, ctx)


@dataclass(frozen=True)
class _Approved:
    """What the guard let a commit through for: the tree it would record, and where the branch was."""

    repository: Repository
    ref: str | None
    """The branch HEAD named (``refs/heads/...``); ``None`` when HEAD was detached."""
    head: str | None
    """The commit HEAD named; ``None`` on a branch with no commit yet."""
    tree: str
    amend: bool


_approved: contextvars.ContextVar[_Approved | None] = contextvars.ContextVar("tandem_sdlc_approved", default=None)
"""The guard's approval of the commit call under way, for the check after it: ``Registry.invoke`` runs a call's
before hooks, the tool and its after hooks in one context, and the before hook sets this for every commit call."""


async def _commit_id(repository: Repository, name: str) -> str | None:
    """The commit ``name`` names; ``None`` when it names none (a branch with no commit, a root's parent)."""
    found = await repository.run(["rev-parse", "--verify", "-q", f"{name}^{{commit}}"], read_only=True, check=False)
    return found.stdout.strip() or None


async def _approving(repository: Repository, tree: str, amend: bool) -> _Approved:
    branch = await repository.run(["symbolic-ref", "-q", "HEAD"], read_only=True, check=False)
    return _Approved(repository, branch.stdout.strip() or None, await _commit_id(repository, "HEAD"), tree, amend)


async def _check_recorded(tool_name: str, approved: _Approved, sha: str, ctx: CallContext) -> None:
    """After commit ``sha`` the guard let through: whether it recorded the tree the guard checked. Files can change
    between the check and the commit (another writer, a hook that reformats and stages). In enforce mode a commit
    that recorded other content is undone: the branch it was made on moves back to where it was, only if it still
    names this very commit and the commit sits where it was made (its parent the commit the guard saw, or that
    one's parent for an amend); its changes stay staged and the commit in the reflog, and the call answers with
    the files. Anything else (a first commit, a branch moved since) is answered without touching a ref. Warn mode
    warns."""
    repository = approved.repository
    found = await repository.run(["rev-parse", "--verify", "-q", f"{sha}^{{tree}}"], read_only=True, check=False)
    recorded = found.stdout.strip()
    if not recorded or recorded == approved.tree:
        return
    changed = [path for _status, path in await _differences(ctx, repository, recorded, approved.tree)]
    if not changed:
        return
    sdlc = _sdlc(ctx)
    shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
    text = (
        f"{tool_name}: the commit {sha[:12]} recorded {shown} other than the guard checked them (they changed "
        "between the check and the commit: another writer, or a hook)"
    )
    if sdlc.mode() != "enforce":
        async with sdlc.editing(ctx) as editing:
            editing.warn(f"committed anyway (warn mode): {text}"[:1000])
        await ctx.log("warning", f"sdlc: {text}", "tandem.sdlc")
        return
    why_not = await _why_not_undone(approved, sha)
    if why_not is None:
        reason = "tandem sdlc: commit undone, it recorded files the guard did not check"
        ref = ["--no-deref", "HEAD"] if approved.ref is None else [approved.ref]  # detached: HEAD itself
        undo = ["update-ref", "-m", reason, *ref, str(approved.head), sha]  # only if it still names the commit
        undone = await repository.run(undo, check=False)
        if undone.ok:
            raise ToolError(
                f"commit undone (sdlc mode enforce): {text}. Its changes are staged and the commit is in the "
                "reflog; validate again and commit when it passes"
            )
        why_not = (undone.stderr or undone.stdout).strip()[:300] or "git update-ref failed"
    raise _NotUndone(
        f"commit recorded files the guard did not check (sdlc mode enforce), and it was not undone ({why_not}): "
        f"{text}. Undo it yourself if it must not stand"
    )


class _NotUndone(ToolError):
    """A commit that recorded unchecked files and stands: the call fails, and the loop records the commit."""


async def _why_not_undone(approved: _Approved, sha: str) -> str | None:
    """Why undoing commit ``sha`` could lose someone else's work or misplace a branch; ``None`` when it cannot."""
    if approved.head is None:
        return "it is the branch's first commit"
    repository = approved.repository
    expected = await _commit_id(repository, f"{approved.head}^") if approved.amend else approved.head
    if await _commit_id(repository, f"{sha}^") != expected:
        return "the commit is not where it was made: something committed or moved the branch meanwhile"
    named = await _commit_id(repository, approved.ref or "HEAD")
    if named != sha:
        return f"{approved.ref or 'HEAD'} no longer names it"
    return None


async def _record_commit(tool_name: str, result: Any, ctx: CallContext) -> None:
    if _is_error(result):
        return
    answer = _structured(result) or {}
    commit = answer.get("commit") or {}
    sha = commit.get("sha", "") if isinstance(commit, dict) else ""
    sdlc = _sdlc(ctx)
    async with sdlc.editing(ctx) as loop:
        loop.committed(sha or f"({tool_name})")


@toolset.after(*COMMITS)
async def _committed(tool: Tool, arguments: dict[str, Any], result: Any, ctx: CallContext) -> None:
    approved = _approved.get()
    _approved.set(None)
    commit = (_structured(result) or {}).get("commit")
    sha = commit.get("sha") if isinstance(commit, dict) else None
    if approved is not None and isinstance(sha, str) and sha and not _is_error(result):
        try:
            await _check_recorded(tool.name, approved, sha, ctx)
        except _NotUndone:
            await _record_commit(tool.name, result, ctx)  # it stands
            raise
    await _record_commit(tool.name, result, ctx)
