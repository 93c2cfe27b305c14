"""The linters and formatters ``lint`` and ``format`` can run: how each is invoked, which files it takes, and how its
machine-readable output becomes findings. Each runs in the workspace root through the command runner, so it finds
the project's own configuration (``pyproject.toml``, ``ruff.toml``, ``.shellcheckrc``, ``.editorconfig``,
``.prettierrc``, ``eslint.config.js``) exactly as it does on the command line.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import sys
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tandem.core import CommandResult, ToolError

Severity = Literal["error", "warning", "info"]


class Finding(BaseModel):
    tool: str
    path: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    code: str = Field(description="The rule that fired (ruff's F401, shellcheck's SC2086, eslint's no-unused-vars).")
    message: str
    severity: Severity = "error"
    fixable: bool = Field(False, description="The tool can fix it (lint with fix=true applies safe fixes).")
    url: str | None = None


Parsed = tuple[list[dict[str, Any]], Counter[str]]
Parse = Callable[[CommandResult, Callable[[str], str], int], Parsed]
"""Turns a run's output into its first ``limit`` findings in path and line order (plain dicts with Finding's
fields: a large report has tens of thousands, and only the first few hundred become models) and the count of every
finding by rule; the second argument maps a printed path to what clients see."""


@dataclass(frozen=True, slots=True)
class Linter:
    name: str
    program: str
    globs: tuple[str, ...]
    check: tuple[str, ...]
    """Arguments before the files, for a check."""
    fix: tuple[str, ...] | None
    """Arguments before the files, to fix what can be fixed; None when the tool cannot fix."""
    parse: Parse
    failed: Callable[[CommandResult], bool]
    """The run itself failed (bad configuration, crash), as opposed to finding problems."""


@dataclass(frozen=True, slots=True)
class Formatter:
    name: str
    program: str
    globs: tuple[str, ...]
    check: tuple[str, ...]
    """Arguments before the files that print a unified diff (or the files) without writing."""
    apply: tuple[str, ...]
    listed: Literal["diff", "paths", "stdin"]
    """What a check prints: a unified diff (``--- file`` headers), or one path per line; ``stdin``: the tool
    formats one file's content from stdin to stdout (``check`` + the path), and Tandem diffs the two."""
    failed: Callable[[CommandResult], bool]
    select: Callable[[Path, list[str]], list[str]] | None = None
    """Narrows the listed files to those the tool's own configuration formats."""


_RUFF_CODE = re.compile(r'"code":(?:"([^"]*)"|null),"end_location"')
"""A finding's rule in ruff's JSON lines (its keys come sorted, "code" right before "end_location"; inside a
message a quote is escaped, so the pattern cannot match there)."""


def _ruff_findings(result: CommandResult, shown: Callable[[str], str], limit: int) -> Parsed:
    """ruff's ``json-lines`` report, which comes sorted by file and location: only the first ``limit`` lines are
    parsed; the rest are counted by rule with one regex (parsing a 20,000-finding report whole costs more than ruff's
    own run from its cache)."""
    counts = Counter(code or "invalid-syntax" for code in _RUFF_CODE.findall(result.stdout))
    findings = []
    for line in result.stdout.splitlines()[:limit]:
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise ToolError(f"ruff printed output that is not its JSON report: {line[:300]!r}") from None
        location, end = item.get("location") or {}, item.get("end_location") or {}
        fix = item.get("fix")
        findings.append(
            dict(
                tool="ruff",
                path=shown(item["filename"]),
                line=location.get("row", 1),
                column=location.get("column", 1),
                end_line=end.get("row"),
                end_column=end.get("column"),
                code=item.get("code") or "invalid-syntax",
                message=item.get("message", ""),
                fixable=bool(fix) and fix.get("applicability") == "safe",
                url=item.get("url"),
            )
        )
    if result.stdout.strip() and not counts:
        raise ToolError(f"ruff printed output that is not its JSON report: {result.stdout[:300]!r}")
    return findings, counts


def _every(findings: list[dict[str, Any]], limit: int) -> Parsed:
    findings.sort(key=lambda f: (f["path"], f["line"], f["column"], f["code"]))
    return findings[:limit], Counter(f["code"] for f in findings)


_SHELLCHECK_LEVELS: dict[str, Severity] = {"error": "error", "warning": "warning", "info": "info", "style": "info"}


def _shellcheck_findings(result: CommandResult, shown: Callable[[str], str], limit: int) -> Parsed:
    found = [
        dict(
            tool="shellcheck",
            path=shown(item["file"]),
            line=item["line"],
            column=item["column"],
            end_line=item.get("endLine"),
            end_column=item.get("endColumn"),
            code=f"SC{item['code']}",
            message=item["message"],
            severity=_SHELLCHECK_LEVELS.get(item.get("level", ""), "warning"),
            fixable=False,
            url=f"https://www.shellcheck.net/wiki/SC{item['code']}",
        )
        for item in _json(result.stdout, "shellcheck").get("comments", [])
    ]
    return _every(found, limit)


def _eslint_findings(result: CommandResult, shown: Callable[[str], str], limit: int) -> Parsed:
    findings = []
    for report in _json(result.stdout, "eslint"):
        for item in report.get("messages", []):
            findings.append(
                dict(
                    tool="eslint",
                    path=shown(report["filePath"]),
                    line=item.get("line", 1),
                    column=item.get("column", 1),
                    end_line=item.get("endLine"),
                    end_column=item.get("endColumn"),
                    code=item.get("ruleId") or "parse-error",
                    message=item.get("message", ""),
                    severity="error" if item.get("severity") == 2 else "warning",
                    fixable="fix" in item,
                )
            )
    return _every(findings, limit)


def _json(text: str, tool: str) -> dict | list:  # type: ignore[type-arg]
    try:
        return json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        raise ToolError(f"{tool} printed output that is not its JSON report: {text[:300]!r}") from None


TREEFMT_CONFIGS = ("treefmt.toml", ".treefmt.toml")


def treefmt_files(workspace: Path, files: list[str]) -> list[str]:
    """The files some formatter in the project's treefmt.toml includes and none of its excludes (global or its
    own) leaves out; a superset of treefmt's own choice (a ``*`` here also crosses ``/``)."""
    config = next((workspace / name for name in TREEFMT_CONFIGS if (workspace / name).is_file()), None)
    if config is None:
        raise ToolError("treefmt is among the formatters, but the workspace has no treefmt.toml")
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ToolError(f"{config.name} is not valid TOML: {exc}") from None
    excluded = [str(g) for g in data.get("global", {}).get("excludes", [])]
    rules = [
        ([str(g) for g in f.get("includes", [])], [*excluded, *(str(g) for g in f.get("excludes", []))])
        for f in data.get("formatter", {}).values()
        if isinstance(f, dict)
    ]
    root = f"{workspace.resolve()}/"

    def matches(relative: str, globs: list[str]) -> bool:
        name = relative.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(relative, g) or fnmatch.fnmatchcase(name, g) for g in globs)

    chosen = []
    for path in files:
        relative = path.removeprefix(root)
        if any(matches(relative, inc) and not matches(relative, exc) for inc, exc in rules):
            chosen.append(path)
    return chosen


LINTERS: dict[str, Linter] = {
    "ruff": Linter(
        name="ruff",
        program="ruff",
        globs=("*.py", "*.pyi", "*.ipynb"),
        # --force-exclude: files the project's configuration excludes stay excluded even when named explicitly.
        check=("check", "--output-format", "json-lines", "--force-exclude", "--no-fix", "--"),
        fix=("check", "--output-format", "json-lines", "--force-exclude", "--fix", "--"),
        parse=_ruff_findings,
        failed=lambda r: r.exit_code not in (0, 1),
    ),
    "shellcheck": Linter(
        name="shellcheck",
        program="shellcheck",
        globs=("*.sh", "*.bash"),
        check=("--format", "json1", "--"),
        fix=None,
        parse=_shellcheck_findings,
        failed=lambda r: r.exit_code not in (0, 1),
    ),
    "eslint": Linter(
        name="eslint",
        program="eslint",
        globs=("*.js", "*.mjs", "*.cjs", "*.jsx", "*.ts", "*.mts", "*.cts", "*.tsx"),
        check=("--format", "json", "--no-error-on-unmatched-pattern", "--"),
        fix=("--format", "json", "--no-error-on-unmatched-pattern", "--fix", "--"),
        parse=_eslint_findings,
        failed=lambda r: r.exit_code not in (0, 1),
    ),
}

FORMATTERS: dict[str, Formatter] = {
    "ruff": Formatter(
        name="ruff",
        program="ruff",
        globs=("*.py", "*.pyi", "*.ipynb"),
        check=("format", "--diff", "--force-exclude", "--"),
        apply=("format", "--force-exclude", "--"),
        listed="diff",
        failed=lambda r: r.exit_code not in (0, 1),
    ),
    "shfmt": Formatter(
        name="shfmt",
        program="shfmt",
        globs=("*.sh", "*.bash"),
        check=("--diff", "--"),
        apply=("--write", "--"),
        listed="diff",
        failed=lambda r: r.exit_code not in (0, 1),
    ),
    "prettier": Formatter(
        name="prettier",
        program="prettier",
        globs=("*.js", "*.mjs", "*.cjs", "*.jsx", "*.ts", "*.tsx", "*.css", "*.scss", "*.json", "*.md", "*.yaml"),
        check=("--list-different", "--no-error-on-unmatched-pattern", "--"),
        apply=("--write", "--log-level", "warn", "--no-error-on-unmatched-pattern", "--"),
        listed="paths",
        failed=lambda r: r.exit_code not in (0, 1),
    ),
    # treefmt runs the formatters the project's treefmt.toml names (programs the project chose: name treefmt in
    # [code] formatters only for a project whose treefmt.toml you trust). It has no dry run, so a check pipes each
    # file through `treefmt --stdin PATH`.
    "treefmt": Formatter(
        name="treefmt",
        program="treefmt",
        globs=("*",),
        check=("--stdin", "--quiet", "--"),
        apply=("--no-cache", "--quiet", "--on-unmatched", "debug", "--"),
        listed="stdin",
        failed=lambda r: r.exit_code != 0,
        select=treefmt_files,
    ),
}


def find_program(name: str, workspace: Path) -> str | None:
    """A tool's executable: beside this Python (installed with Tandem or into its environment), in the project's
    ``node_modules/.bin`` (eslint and prettier are usually project dependencies), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    local = workspace / "node_modules" / ".bin" / name
    if local.is_file():
        return str(local)
    return shutil.which(name)


def chunks(files: list[str], budget: int = 100_000) -> list[list[str]]:
    """Files split so that no command line grows past ``budget`` bytes (the OS caps argv's total size)."""
    out: list[list[str]] = [[]]
    size = 0
    for name in files:
        if out[-1] and size + len(name) + 1 > budget:
            out.append([])
            size = 0
        out[-1].append(name)
        size += len(name) + 1
    return out if out[0] else []
