"""``validate_syntax``: parse errors with line and column, from tree-sitter for every language it knows and from
the language's own parser where Python has one (Python's compiler, json, PyYAML, tomllib). Nothing is executed.

Parsing runs in a worker process (``tandem.core.worker_processes``): a file that crashes a native parser costs
that call an error result, never the server.
"""

from __future__ import annotations

import json
import re
import tomllib
import warnings
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError, relative_display, syntax_trees, text_files, worker_processes
from tandem.toolsets.code.toolset import toolset

MAX_ERRORS = 50
_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


class SyntaxProblem(BaseModel):
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    message: str


class SyntaxReport(BaseModel):
    language: str
    valid: bool
    checker: str = Field(description="What parsed it: tree-sitter, python-compile, json, yaml or toml.")
    errors: list[SyntaxProblem] = Field(default_factory=list)
    more_errors: int = 0
    path: str | None = None

    def summary(self) -> str:
        where = self.path or "content"
        if self.valid:
            return f"{where}: valid {self.language} ({self.checker})"
        first = self.errors[0]
        count = len(self.errors) + self.more_errors
        return (
            f"{where}: {count} syntax error(s) ({self.checker}); first at {first.line}:{first.column}: {first.message}"
        )


def _python(text: str) -> list[SyntaxProblem]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (invalid escapes) are not errors
            compile(text, "<source>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [
            SyntaxProblem(
                line=exc.lineno or 1,
                column=exc.offset or 1,
                end_line=exc.end_lineno,
                end_column=exc.end_offset,
                message=exc.msg,
            )
        ]
    except ValueError as exc:  # a NUL byte in the source
        return [SyntaxProblem(line=1, column=1, message=str(exc))]
    return []


def _json(text: str) -> list[SyntaxProblem]:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return [SyntaxProblem(line=exc.lineno, column=exc.colno, message=exc.msg)]
    return []


def _yaml(text: str) -> list[SyntaxProblem]:
    try:
        for _ in yaml.safe_load_all(text):
            pass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return [SyntaxProblem(line=line, column=column, message=str(exc.problem or exc.context or "invalid YAML"))]
    except yaml.YAMLError as exc:
        return [SyntaxProblem(line=1, column=1, message=str(exc))]
    return []


def _toml(text: str) -> list[SyntaxProblem]:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_AT.search(str(exc))
        line, column = (int(found.group(1)), int(found.group(2))) if found else (1, 1)
        return [SyntaxProblem(line=line, column=column, message=_TOML_AT.sub("", str(exc)).strip())]
    return []


def _tree_sitter(text: str, language: str) -> list[SyntaxProblem]:
    source = text.encode("utf-8", "surrogateescape")
    tree = syntax_trees.parser(language).parse(source)
    problems: list[SyntaxProblem] = []
    pending = [tree.root_node]
    while pending:
        node = pending.pop()
        if node.is_missing:
            message = f"missing {node.type!r}"
        elif node.is_error:
            snippet = source[node.start_byte : min(node.end_byte, node.start_byte + 40)].decode("utf-8", "replace")
            message = f"unexpected {snippet.splitlines()[0]!r}" if snippet.strip() else "syntax error"
        elif node.has_error:
            pending.extend(reversed(node.children))
            continue
        else:
            continue
        (line, column), (end_line, end_column) = node.start_point, node.end_point
        problems.append(
            SyntaxProblem(
                line=line + 1, column=column + 1, end_line=end_line + 1, end_column=end_column + 1, message=message
            )
        )
    return problems


OWN_PARSERS = {
    "python": ("python-compile", _python),
    "json": ("json", _json),
    "yaml": ("yaml", _yaml),
    "toml": ("toml", _toml),
}


def check_text(text: str, language: str) -> tuple[str, list[SyntaxProblem]]:
    """The checker used and the syntax errors in ``text`` (first the language's own parser where Python has one,
    which is the authority; tree-sitter otherwise). Runs in a worker process; safe to call anywhere."""
    if language in OWN_PARSERS:
        checker, check = OWN_PARSERS[language]
        return checker, check(text)
    return "tree-sitter", _tree_sitter(text, language)


def check_files(workspace: Path, max_bytes: int, files: list[tuple[Path, str]]) -> list[SyntaxReport]:
    """Every file with errors (or that could not be read) among ``files``; runs in a worker process."""
    reports = []
    for path, language in files:
        shown = relative_display(workspace, path)
        try:
            text = text_files.read_text(workspace, path, max_bytes).text
        except ToolError as exc:
            reports.append(
                SyntaxReport(language=language, valid=False, checker="read", path=shown, errors=[_unread(exc)])
            )
            continue
        checker, problems = check_text(text, language)
        if problems:
            reports.append(_report(language, checker, problems, shown))
    return reports


def _unread(exc: ToolError) -> SyntaxProblem:
    return SyntaxProblem(line=1, column=1, message=f"not checked: {exc}")


def _report(language: str, checker: str, problems: list[SyntaxProblem], path: str | None) -> SyntaxReport:
    return SyntaxReport(
        language=language,
        valid=not problems,
        checker=checker,
        errors=problems[:MAX_ERRORS],
        more_errors=max(0, len(problems) - MAX_ERRORS),
        path=path,
    )


@toolset.tool(read_only=True, title="Validate syntax")
async def validate_syntax(
    ctx: CallContext, path: str | None = None, content: str | None = None, language: str | None = None
) -> SyntaxReport:
    """Check a file (``path``) or a text (``content``) for syntax errors, each with line, column and a message.

    ``language`` is inferred from the file's extension when omitted (needed for ``content``). Names are
    tree-sitter's (python, javascript, typescript, tsx, rust, go, c, cpp, java, bash, json, yaml, toml, ... 170+);
    Python, JSON, YAML and TOML are checked by their own parsers (Python's compiler, without running anything).
    """
    if (path is None) == (content is None):
        raise ToolError("give either 'path' (a file in the workspace) or 'content' (the text to check)")
    shown = None
    text = content or ""
    if path is not None:
        real = ctx.path(path)
        shown = ctx.display(real)
        language = language or syntax_trees.language_of(real)
        if language is None:
            raise ToolError(f"cannot tell the language of {shown!r} from its name; give 'language'")
        text = text_files.read_text(ctx.workspace, real, ctx.settings.max_file_bytes).text
    if language is None:
        raise ToolError("give 'language' with 'content' (python, javascript, rust, json, yaml, ...)")
    language = syntax_trees.known(language)
    checker, problems = await worker_processes.result(worker_processes.submit(check_text, text, language))
    return _report(language, checker, problems, shown)
