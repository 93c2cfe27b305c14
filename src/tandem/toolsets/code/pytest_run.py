"""``run_tests``: the project's pytest suite through the command runner, read back from pytest's JUnit XML report
(counts, and each failure with its test id and a trimmed traceback), with progress while it runs.

Only a fixed set of pytest options is accepted: options such as ``--basetemp`` (which pytest empties), ``-p`` (loads
a plugin), ``-c`` / ``--rootdir`` or ``--junitxml`` would let a caller write or run things outside the workspace.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError
from tandem.toolsets.code.toolset import toolset

MAX_FAILURES = 50
MAX_TRACEBACK_LINES = 40
MAX_TRACEBACK_CHARS = 4000
MAX_REPORT_BYTES = 64 * 1024 * 1024
FLAGS = frozenset(
    {
        "-x", "--exitfirst", "-q", "--quiet", "-v", "--verbose", "-vv", "-s", "-l", "--showlocals", "--lf",
        "--last-failed", "--ff", "--failed-first", "--nf", "--new-first", "--sw", "--stepwise", "--no-header",
        "--runxfail", "--strict-markers", "--co", "--collect-only",
    }
)  # fmt: skip
"""Options that take no value and only change what runs or what is printed."""
VALUED = frozenset({"-k", "-m", "--maxfail", "--tb", "-n", "--numprocesses", "--timeout", "--durations", "-W"})
"""Options with a value that cannot name a path."""
_PROGRESS = re.compile(r"\[\s*(\d{1,3})%\]")


class Failure(BaseModel):
    test_id: str = Field(description="The pytest node id (path::Class::test[param]).")
    kind: Literal["failure", "error"]
    message: str
    traceback: str = Field(description="The end of the traceback, trimmed.")
    path: str | None = None
    line: int | None = None


class TestRun(BaseModel):
    passed: int
    failed: int
    errors: int
    skipped: int
    total: int
    duration_s: float
    exit_code: int | None
    timed_out: bool = False
    failures: list[Failure] = Field(default_factory=list)
    more_failures: int = Field(0, description="Failures beyond those listed.")
    output_tail: str = Field("", description="The end of pytest's own output.")

    def summary(self) -> str:
        parts = [f"{self.passed} passed", f"{self.failed} failed", f"{self.errors} errors", f"{self.skipped} skipped"]
        text = ", ".join(parts) + f" in {self.duration_s:.1f}s"
        if self.timed_out:
            text += " (stopped: time limit reached)"
        listed = [f.test_id for f in self.failures[:5]]
        return text + ("\nfailing: " + ", ".join(listed) if listed else "")


def pytest_arguments(ctx: CallContext, paths: list[str] | None, args: list[str] | None) -> list[str]:
    """The caller's paths (confined, node ids kept) and options (only the allowed ones), as pytest arguments."""
    out: list[str] = []
    pending: str | None = None
    for arg in args or []:
        if pending is not None:
            out += [pending, arg]
            pending = None
            continue
        name, eq, _ = arg.partition("=")
        if arg in FLAGS or (eq and name in VALUED):
            out.append(arg)
        elif arg in VALUED:
            pending = arg
        elif len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and arg[:2] in VALUED:  # -kexpr, -n4
            out.append(arg)
        else:
            allowed = ", ".join(sorted(FLAGS | VALUED))
            raise ToolError(f"pytest option {arg!r} is not allowed here (give paths in 'paths'); allowed: {allowed}")
    if pending is not None:
        raise ToolError(f"pytest option {pending!r} needs a value")
    for target in paths or []:
        file_part, sep, rest = target.partition("::")
        shown = ctx.display(ctx.path(file_part))
        out.append(f"./{shown}{sep}{rest}" if shown != "." else ".")
    return out


def test_command(ctx: CallContext) -> list[str]:
    """How pytest starts: the ``[code] test_command`` setting, else the workspace's virtual environment, else the
    python3 on PATH."""
    configured = ctx.settings.code.test_command
    if configured:
        return list(configured)
    for candidate in (".venv/bin/python", "venv/bin/python"):
        if (ctx.workspace / candidate).exists():
            return [str(ctx.workspace / candidate), "-m", "pytest"]
    python = shutil.which("python3") or shutil.which("python")
    if python is None:
        raise ToolError("no Python found to run pytest; set [code] test_command in tandem.toml")
    return [python, "-m", "pytest"]


def _node_id(case: ElementTree.Element) -> str:
    name = case.get("name", "?")
    file = case.get("file")
    classname = case.get("classname", "")
    if not file:
        return f"{classname}::{name}" if classname else name
    module = file.removesuffix(".py").replace("/", ".")
    classes = classname[len(module) + 1 :] if classname.startswith(module + ".") else ""
    return "::".join([file, *[c for c in classes.split(".") if c], name])


def _trim(text: str) -> str:
    lines = text.strip().splitlines()[-MAX_TRACEBACK_LINES:]
    trimmed = "\n".join(lines)
    return trimmed[-MAX_TRACEBACK_CHARS:]


def read_report(report: Path, run: TestRun) -> None:
    """Fill ``run`` from pytest's JUnit XML (xunit1: each case carries its file and line)."""
    if report.stat().st_size > MAX_REPORT_BYTES:
        raise ToolError("pytest's report is too large to read; run fewer tests at once")
    root = ElementTree.parse(report).getroot()
    failures: list[Failure] = []
    for case in root.iter("testcase"):
        run.total += 1
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            run.passed += 1
        elif outcome.tag == "skipped":
            run.skipped += 1
        else:
            kind: Literal["failure", "error"] = "failure" if outcome.tag == "failure" else "error"
            run.failed += kind == "failure"
            run.errors += kind == "error"
            line = case.get("line")
            failures.append(
                Failure(
                    test_id=_node_id(case),
                    kind=kind,
                    message=(outcome.get("message") or "")[:1000],
                    traceback=_trim(outcome.text or ""),
                    path=case.get("file"),
                    line=int(line) + 1 if line and line.isdigit() else None,
                )
            )
    run.failures = failures[:MAX_FAILURES]
    run.more_failures = max(0, len(failures) - MAX_FAILURES)


async def run_pytest(
    ctx: CallContext, paths: list[str] | None, args: list[str] | None, timeout_s: float | None
) -> TestRun:
    """Run pytest once and read its report; what run_tests and run_all_validations both call."""
    arguments = pytest_arguments(ctx, paths, args)
    command = test_command(ctx)
    limit = timeout_s or ctx.settings.code.test_timeout_s

    async def progress(stream: str, text: str) -> bool:
        if stream == "stdout":
            percents = _PROGRESS.findall(text)
            if percents:
                await ctx.report_progress(float(percents[-1]), 100.0, "running tests")
        return False

    with tempfile.TemporaryDirectory(prefix="tandem-pytest-") as scratch:
        report = Path(scratch) / "report.xml"
        argv = [
            *command,
            f"--junitxml={report}",
            "-o",
            "junit_family=xunit1",
            "--color=no",
            *arguments,
        ]
        result = await ctx.commands.run(argv, timeout_s=limit, on_output=progress)
        output = (result.stdout + result.stderr).strip().replace(str(report), "<report.xml>")
        run = TestRun(
            passed=0,
            failed=0,
            errors=0,
            skipped=0,
            total=0,
            duration_s=round(result.duration_s, 2),
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            output_tail=output[-3000:],
        )
        if report.is_file():
            read_report(report, run)
        elif result.timed_out:
            return run
        elif "No module named pytest" in output:
            raise ToolError(f"pytest is not installed for {command[0]}; install it or set [code] test_command")
        elif result.exit_code != 5:  # 5: no tests were collected, which the counts say
            raise ToolError(f"pytest did not run (exit {result.exit_code}): {output[-1500:]}")
    return run


@toolset.tool(destructive=False, open_world=True, title="Run tests", task_support="optional")
async def run_tests(
    ctx: CallContext,
    paths: list[str] | None = None,
    args: list[str] | None = None,
    timeout_s: Annotated[float, Field(gt=0)] | None = None,
) -> TestRun:
    """Run the project's pytest suite and report passed / failed / skipped counts, and each failure with its test id
    (``path::Class::test[param]``) and the end of its traceback.

    ``paths``: test files, directories or node ids (``tests/test_api.py::test_login``); default: pytest's own
    discovery. ``args``: pytest options from a safe set (``-k EXPR``, ``-m MARK``, ``-x``, ``--maxfail=N``,
    ``--lf``, ``--tb=short``, ``-n N``, ``-v``...). ``timeout_s``: seconds (default: the ``[code] test_timeout_s``
    setting); the whole run is stopped when it is reached or when the call is cancelled. pytest runs with the
    workspace's virtual environment (``.venv``) when it has one, or the ``[code] test_command`` setting.
    """
    await ctx.run_as_task()  # a client that supports tasks polls for the result instead of holding the call open
    return await run_pytest(ctx, paths, args, timeout_s)
