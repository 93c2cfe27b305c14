"""``run_all_validations``: every quality gate in one call with one summary, the step an assistant runs before it
hands code back (syntax, lint, format check, secrets, tests). A step that cannot run (a tool missing, a bad
configuration) is reported as an error and the others still run."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError, syntax_trees, worker_processes
from tandem.core.file_list import list_files
from tandem.toolsets.code import lint as lint_tools
from tandem.toolsets.code.pytest_run import run_pytest
from tandem.toolsets.code.secret_scan import scan_for_validation
from tandem.toolsets.code.syntax_check import check_files
from tandem.toolsets.code.toolset import toolset

StepName = Literal["syntax", "lint", "format", "secrets", "tests"]
STEPS: tuple[StepName, ...] = ("syntax", "lint", "format", "secrets", "tests")
SHOWN = 20
"""Problems listed per step; the step's own tool gives the full list."""
SYNTAX_BATCH = 200


class Step(BaseModel):
    name: StepName
    status: Literal["passed", "failed", "error", "skipped"]
    summary: str
    problems: int = 0
    details: list[str] = Field(default_factory=list, description=f"Up to {SHOWN} problems, one line each.")
    duration_s: float = 0.0


class ValidationReport(BaseModel):
    ok: bool = Field(description="True when no step failed or errored.")
    steps: list[Step]

    def summary(self) -> str:
        failed = [f"{s.name} ({s.summary})" for s in self.steps if s.status in ("failed", "error")]
        passed = [s.name for s in self.steps if s.status == "passed"]
        skipped = [s.name for s in self.steps if s.status == "skipped"]
        text = ("FAILED: " + "; ".join(failed)) if failed else "all validations passed"
        if passed:
            text += f"\npassed: {', '.join(passed)}"
        if skipped:
            text += f"\nskipped: {', '.join(skipped)}"
        return text


Outcome = tuple[int, str, list[str]]
"""What a step found: how many problems, a short summary, and the first problems one line each."""


async def _syntax(ctx: CallContext, paths: list[str] | None) -> Outcome:
    roots = [ctx.path(p) for p in (paths or ["."])]
    globs = [f"*{ext}" for ext in syntax_trees.EXTENSIONS] + list(syntax_trees.NAMES)
    listed, _ = await list_files(ctx.commands, roots, globs=globs)
    files = [(f, lang) for f in listed if (lang := syntax_trees.language_of(f)) is not None]
    batches = [files[i : i + SYNTAX_BATCH] for i in range(0, len(files), SYNTAX_BATCH)]
    budget = ctx.settings.max_file_bytes
    futures = [worker_processes.submit(check_files, ctx.workspace, budget, batch) for batch in batches]
    reports = [report for future in futures for report in await worker_processes.result(future)]
    lines = [f"{r.path}:{e.line}:{e.column}: {e.message}" for r in reports for e in r.errors[:1]]
    summary = f"{len(reports)} of {len(files)} file(s) with syntax errors" if reports else f"{len(files)} file(s) parse"
    return len(reports), summary, lines[:SHOWN]


async def _lint(ctx: CallContext, paths: list[str] | None) -> Outcome:
    result = await lint_tools.lint(ctx, paths=paths)
    lines = [f"{f.path}:{f.line}:{f.column}: {f.code} {f.message}" for f in result.findings[:SHOWN]]
    return sum(result.counts.values()), result.summary(), lines


async def _format(ctx: CallContext, paths: list[str] | None) -> Outcome:
    result = await lint_tools.format(ctx, paths=paths, check=True)
    return len(result.files) + len(result.errors), result.summary(), (result.files + result.errors)[:SHOWN]


async def _tests(ctx: CallContext, paths: list[str] | None) -> Outcome:
    run = await run_pytest(ctx, None, None, None)
    lines = [f"{f.test_id}: {f.message.splitlines()[0] if f.message else f.kind}" for f in run.failures[:SHOWN]]
    problems = run.failed + run.errors + (1 if run.timed_out else 0)
    if run.total == 0 and run.exit_code not in (0, 5):
        problems += 1
    return problems, run.summary().splitlines()[0], lines


RUNNERS: dict[StepName, Callable[[CallContext, list[str] | None], Awaitable[Outcome]]] = {
    "syntax": _syntax,
    "lint": _lint,
    "format": _format,
    "secrets": scan_for_validation,
    "tests": _tests,
}


@toolset.tool(destructive=False, open_world=True, title="Run all validations", task_support="optional")
async def run_all_validations(
    ctx: CallContext,
    paths: list[str] | None = None,
    skip: list[StepName] | None = None,
) -> ValidationReport:
    """Run every quality gate and answer with one summary: syntax check, lint, format check, secret scan, then the
    test suite. Run it before handing code back.

    ``paths`` limits the file checks (default: the whole workspace; the test suite always runs whole). ``skip``
    leaves steps out, e.g. ``["tests"]`` for a quick pass. Nothing is modified: lint does not fix and format only
    checks. Each step lists its first problems; the step's own tool (validate_syntax, lint, format, scan_secrets,
    run_tests) gives the rest.
    """
    await ctx.run_as_task()  # a client that supports tasks polls for the report instead of holding the call open
    steps: list[Step] = []
    chosen = list(STEPS)
    for index, name in enumerate(chosen):
        if name in (skip or []):
            steps.append(Step(name=name, status="skipped", summary="skipped on request"))
            continue
        await ctx.report_progress(index, len(chosen), f"running {name}")
        started = time.monotonic()
        try:
            problems, summary, details = await RUNNERS[name](ctx, paths)
        except ToolError as exc:
            steps.append(Step(name=name, status="error", summary=str(exc)[:500], duration_s=time.monotonic() - started))
            continue
        steps.append(
            Step(
                name=name,
                status="failed" if problems else "passed",
                summary=summary,
                problems=problems,
                details=details,
                duration_s=round(time.monotonic() - started, 2),
            )
        )
    await ctx.report_progress(len(chosen), len(chosen), "done")
    return ValidationReport(ok=all(s.status in ("passed", "skipped") for s in steps), steps=steps)
