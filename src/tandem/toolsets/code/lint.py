"""``lint`` and ``format``: the project's linters and formatters (ruff first; shellcheck, eslint, shfmt, prettier
when installed and named in ``[code]``), run on confined files through the command runner, their JSON or diff
output turned into structured findings.

Files are listed by Tandem (``.gitignore`` respected, symlinks never followed) and handed to each tool explicitly,
so a fix or a format never writes through a link to a file outside the workspace.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tandem.core import CallContext, CommandResult, ToolError, text_files
from tandem.core.file_list import list_files
from tandem.core.workspace_path import PathRefused, real_workspace_root, workspace_path
from tandem.toolsets.code.linters import FORMATTERS, LINTERS, Finding, Formatter, Linter, chunks, find_program
from tandem.toolsets.code.toolset import toolset

MAX_FINDINGS = 1000
MAX_REPORT_BYTES = 32 * 1024 * 1024
MAX_DIFF_CHARS = 60_000
TOOL_TIMEOUT_S = 300.0
_PROBLEM = re.compile(r"error|:\d+:\d+", re.IGNORECASE)
"""A formatter's stderr line that reports a problem (not its "N files left unchanged" tally)."""
_DIFF_HEADER = re.compile(r"^\+\+\+ (?:b/)?(.+?)(?:\t.*)?$", re.MULTILINE)


class LintResult(BaseModel):
    findings: list[Finding]
    counts: dict[str, int] = Field(description="Findings per rule code.")
    files_checked: int
    fixed: int = Field(0, description="Problems fixed (lint with fix=true).")
    tools_run: list[str]
    tools_missing: list[str] = Field(default_factory=list, description="Configured tools that are not installed.")
    truncated: bool = False

    def summary(self) -> str:
        if not self.tools_run:
            return f"no linter ran (not installed: {', '.join(self.tools_missing)})"
        head = f"{len(self.findings)}{'+' if self.truncated else ''} problem(s) in {self.files_checked} file(s)"
        if self.fixed:
            head += f", {self.fixed} fixed"
        top = ", ".join(f"{code} x{n}" for code, n in Counter(self.counts).most_common(5))
        missing = f"; not installed: {', '.join(self.tools_missing)}" if self.tools_missing else ""
        return f"{head} ({', '.join(self.tools_run)}){': ' + top if top else ''}{missing}"


class FormatResult(BaseModel):
    changed: bool = Field(description="True when files are (check) or were (apply) reformatted.")
    files: list[str] = Field(description="Files that would be reformatted (check) or were (apply).")
    diff: str = Field("", description="What formatting would change (check mode, where the formatter shows it).")
    files_checked: int
    applied: bool
    tools_run: list[str]
    tools_missing: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list, description="Files a formatter could not handle, and why.")
    truncated: bool = False

    def summary(self) -> str:
        verb = "reformatted" if self.applied else "would be reformatted"
        text = f"{len(self.files)} of {self.files_checked} file(s) {verb}"
        if self.errors:
            text += f"; {len(self.errors)} error(s)"
        if self.tools_missing:
            text += f"; not installed: {', '.join(self.tools_missing)}"
        return text


async def _files_for(ctx: CallContext, paths: list[str] | None, globs: tuple[str, ...]) -> list[Path]:
    roots = [ctx.path(p) for p in (paths or ["."])]
    files, _ = await list_files(ctx.commands, roots, globs=list(globs))
    return files


def _shown(ctx: CallContext) -> Callable[[str], str]:
    @functools.cache  # a report names the same file once per finding
    def shown(printed: str) -> str:
        path = Path(printed)
        try:
            return ctx.display(workspace_path(ctx.workspace, str(path)) if path.is_absolute() else ctx.path(printed))
        except PathRefused:
            return path.name

    return shown


async def _run(ctx: CallContext, argv: list[str], timeout_s: float) -> CommandResult:
    run = await ctx.commands.run(argv, timeout_s=timeout_s, max_output_bytes=MAX_REPORT_BYTES, keep_head=True)
    if run.stdout_bytes > MAX_REPORT_BYTES:
        raise ToolError(f"{Path(argv[0]).name}'s report is larger than 32 MB; check fewer paths at once")
    return run


def _failure(name: str, result: CommandResult) -> ToolError:
    if result.timed_out:
        return ToolError(f"{name} ran past its time limit; lint fewer paths at once")
    detail = (result.stderr or result.stdout).strip()[:800]
    return ToolError(f"{name} failed (exit {result.exit_code}): {detail}")


async def _installed(
    ctx: CallContext,
    names: list[str] | None,
    available: dict[str, Linter] | dict[str, Formatter],
    paths: list[str] | None,
    result: LintResult | FormatResult,
) -> AsyncIterator[tuple[str, str, list[str]]]:
    """Each chosen tool that is installed, with its program and the files it takes; the result records which ran,
    which are missing and how many files were checked."""
    kind = "linters" if available is LINTERS else "formatters"
    chosen = getattr(ctx.settings.code, kind) if names is None else names
    unknown = [n for n in chosen if n not in available]
    if unknown:
        raise ToolError(f"unknown {kind}: {', '.join(unknown)}; known: {', '.join(available)}")
    for name in chosen:
        program = find_program(available[name].program, ctx.workspace)
        if program is None:
            result.tools_missing.append(name)
            continue
        files = [str(f) for f in await _files_for(ctx, paths, available[name].globs)]
        select = getattr(available[name], "select", None)
        if select is not None:
            files = select(ctx.workspace, files)
        result.tools_run.append(name)
        result.files_checked += len(files)
        yield name, program, files


@toolset.tool(title="Lint")
async def lint(
    ctx: CallContext,
    paths: list[str] | None = None,
    fix: bool = False,
    tools: list[str] | None = None,
) -> LintResult:
    """Lint files with the project's linters and return structured findings (path, line, column, rule, message).

    ``paths``: files or directories in the workspace (default: all of it; ``.gitignore`` respected). ``fix``:
    apply the fixes the linter considers safe, then report what is left. ``tools``: which linters (default: the
    ``[code] linters`` setting, ruff unless configured); a linter that is not installed is reported, not an error.
    Each linter reads the project's own configuration (pyproject.toml / ruff.toml, .shellcheckrc, eslint config).
    """
    findings: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    result = LintResult(findings=[], counts={}, files_checked=0, tools_run=[])
    shown = _shown(ctx)
    async for name, program, files in _installed(ctx, tools, LINTERS, paths, result):
        linter = LINTERS[name]
        for part in chunks(files):
            if fix and linter.fix is not None:
                before = await _run(ctx, [program, *linter.check, *part], TOOL_TIMEOUT_S)
                if linter.failed(before):
                    raise _failure(name, before)
                after = await _run(ctx, [program, *linter.fix, *part], TOOL_TIMEOUT_S)
                if linter.failed(after):
                    raise _failure(name, after)
                found, counted = await ctx.run_sync(functools.partial(linter.parse, after, shown, MAX_FINDINGS))
                _, counted_before = await ctx.run_sync(functools.partial(linter.parse, before, shown, 0))
                result.fixed += max(0, counted_before.total() - counted.total())
            else:
                run = await _run(ctx, [program, *linter.check, *part], TOOL_TIMEOUT_S)
                if linter.failed(run):
                    raise _failure(name, run)
                found, counted = await ctx.run_sync(functools.partial(linter.parse, run, shown, MAX_FINDINGS))
            findings.extend(found)
            counts.update(counted)
            await ctx.report_progress(result.files_checked, None, f"{name}: {counts.total()} problem(s)")
    findings.sort(key=lambda f: (f["path"], f["line"], f["column"], f["code"]))
    result.counts = dict(counts)
    result.findings = [Finding(**f) for f in findings[:MAX_FINDINGS]]
    result.truncated = counts.total() > MAX_FINDINGS
    return result


def _relative_headers(diff: str, ctx: CallContext) -> str:
    """The diff with workspace paths in its header lines shown as clients see them (no host paths)."""
    root = f"{real_workspace_root(ctx.workspace)}/"
    lines = diff.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(("--- ", "+++ ", "diff ")):
            lines[i] = line.replace(root, "")
    return "".join(lines)


def _digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


async def _check_through_stdin(
    ctx: CallContext, program: str, formatter: Formatter, files: list[str]
) -> tuple[list[str], list[str]]:
    """Diffs of what a stdin-to-stdout formatter would change, one run per file; and the files it failed on."""
    diffs: list[str] = []
    errors: list[str] = []
    for index, path in enumerate(files):
        shown = ctx.display(Path(path))
        try:
            before = text_files.read_text(ctx.workspace, Path(path), ctx.settings.max_file_bytes).text
        except ToolError:
            continue  # a binary or oversized file is not formatted
        run = await ctx.commands.run(
            [program, *formatter.check, shown],
            stdin=before,
            timeout_s=TOOL_TIMEOUT_S,
            max_output_bytes=32 * 1024 * 1024,
        )
        if formatter.failed(run):
            errors.append(f"{formatter.name}: {shown}: {(run.stderr.strip() or f'exit {run.exit_code}')[-300:]}")
        elif run.stdout != before:
            lines = difflib.unified_diff(
                before.splitlines(keepends=True), run.stdout.splitlines(keepends=True), f"a/{shown}", f"b/{shown}"
            )
            diffs.append("".join(lines))
        if index % 20 == 19:
            await ctx.report_progress(index + 1, len(files), f"{formatter.name}: {len(diffs)} file(s) would change")
    return diffs, errors


@toolset.tool(destructive=True, title="Format")
async def format(
    ctx: CallContext,
    paths: list[str] | None = None,
    check: bool = True,
    tools: list[str] | None = None,
) -> FormatResult:
    """Check or apply the project's formatters (ruff format for Python; shfmt and prettier when installed and named
    in ``[code] formatters``), honouring the project's configuration (pyproject.toml, .editorconfig, .prettierrc).

    ``check=true`` (the default) writes nothing: it lists the files that would change and shows the diff.
    ``check=false`` formats them in place and lists the files that changed.
    """
    result = FormatResult(changed=False, files=[], files_checked=0, applied=not check, tools_run=[])
    shown = _shown(ctx)
    diffs: list[str] = []
    async for name, program, files in _installed(ctx, tools, FORMATTERS, paths, result):
        formatter = FORMATTERS[name]
        if check and formatter.listed == "stdin":
            found, errors = await _check_through_stdin(ctx, program, formatter, files)
            diffs += found
            result.files += [shown(p) for p in _DIFF_HEADER.findall("".join(found))]
            result.errors += errors
            continue
        for part in chunks(files):
            if check:
                run = await _run(ctx, [program, *formatter.check, *part], TOOL_TIMEOUT_S)
                if formatter.failed(run) and not run.stderr.strip():
                    raise _failure(name, run)
                if formatter.listed == "diff":
                    diffs.append(_relative_headers(run.stdout, ctx))
                    result.files += [shown(p) for p in _DIFF_HEADER.findall(run.stdout)]
                else:
                    result.files += [shown(line.strip()) for line in run.stdout.splitlines() if line.strip()]
            else:
                before = {p: _digest(p) for p in part}
                run = await _run(ctx, [program, *formatter.apply, *part], TOOL_TIMEOUT_S)
                if formatter.failed(run) and not run.stderr.strip():
                    raise _failure(name, run)
                result.files += [shown(p) for p in part if _digest(p) != before[p]]
            if formatter.failed(run):
                problems = [line for line in run.stderr.splitlines() if _PROBLEM.search(line)]
                result.errors += [f"{name}: {line.strip()}" for line in problems[:50]]
            await ctx.report_progress(result.files_checked, None, f"{name}: {len(result.files)} file(s)")
    result.files = sorted(dict.fromkeys(result.files))
    result.changed = bool(result.files)
    diff = "".join(diffs)
    if len(diff) > MAX_DIFF_CHARS:
        diff = diff[:MAX_DIFF_CHARS] + f"\n[diff truncated: {len(diff):,} characters in all]\n"
        result.truncated = True
    result.diff = diff
    return result
