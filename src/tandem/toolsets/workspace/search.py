"""Content and name search with ripgrep (the ``ripgrep`` package ships its binary): ``.gitignore`` respected,
results and time bounded, and no regex can hang the server (ripgrep's engine runs in linear time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tandem.core import CallContext, CommandResult, ToolError
from tandem.core.file_list import list_files, ripgrep
from tandem.toolsets.workspace.toolset import toolset

SEARCH_TIMEOUT_S = 30.0
SEARCH_OUTPUT_BYTES = 16 * 1024 * 1024
MAX_LINE_CHARS = 500


class Match(BaseModel):
    path: str
    line: int
    column: int
    text: str
    before: list[str] = Field(default_factory=list, description="Context lines before the match.")
    after: list[str] = Field(default_factory=list, description="Context lines after the match.")


class SearchResult(BaseModel):
    matches: list[Match]
    files_with_matches: int
    truncated: bool = Field(description="True when there were more matches than max_results, or time ran out.")
    notice: str | None = None


async def _rg(ctx: CallContext, args: list[str], timeout_s: float, enough: int | None = None) -> CommandResult:
    """Run ripgrep; with ``enough``, stop it once its JSON output holds more than that many matches."""
    seen = 0

    async def count(stream: str, text: str) -> bool:
        nonlocal seen
        if enough is None or stream != "stdout":
            return False
        seen += text.count('{"type":"match"')
        return seen > enough

    return await ctx.commands.run(
        [ripgrep(), *args], timeout_s=timeout_s, max_output_bytes=SEARCH_OUTPUT_BYTES, keep_head=True, on_output=count
    )


@toolset.tool(read_only=True, title="Search file contents")
async def search_files(
    ctx: CallContext,
    pattern: str,
    path: str = ".",
    glob: list[str] | None = None,
    literal: bool = False,
    case: Literal["smart", "sensitive", "insensitive"] = "smart",
    context: Annotated[int, Field(ge=0, le=20)] = 0,
    max_results: Annotated[int, Field(ge=1, le=10_000)] = 200,
    include_hidden: bool = False,
    timeout_s: Annotated[float, Field(gt=0, le=300)] = SEARCH_TIMEOUT_S,
) -> SearchResult:
    """Search file contents under ``path`` for a regular expression (Rust syntax) or, with ``literal``, plain text.

    ``glob`` narrows the files (``["*.py", "!tests/**"]``); ``.gitignore`` is respected and binary files skipped.
    ``case`` is smart by default (insensitive unless the pattern has a capital). ``context`` adds lines around
    each match. At most ``max_results`` matches come back, with ``truncated`` set when there were more.
    """
    start = ctx.path(path)
    args = ["--json", "--max-columns", str(MAX_LINE_CHARS), "--max-columns-preview", "--no-follow", "--no-require-git"]
    args += {"smart": ["--smart-case"], "sensitive": ["--case-sensitive"], "insensitive": ["--ignore-case"]}[case]
    if literal:
        args.append("--fixed-strings")
    if context:
        args += ["--context", str(context)]
    if include_hidden:
        args += ["--hidden", "--glob", "!.git"]  # hidden files yes, git's object store no
    for item in glob or []:
        args += ["--glob", item]
    args += ["--regexp", pattern, "--", str(start)]
    result = await _rg(ctx, args, timeout_s, enough=max_results)
    if result.exit_code == 2 and not result.stdout:
        raise ToolError(f"ripgrep refused the search: {result.stderr.strip()[:500]}")
    return _parse(ctx, result, max_results)


def _parse(ctx: CallContext, result: CommandResult, max_results: int) -> SearchResult:
    matches: list[Match] = []
    files: set[str] = set()
    pending_before: list[str] = []
    truncated = result.timed_out or result.output_limit_hit or result.stopped_early
    truncated = truncated or result.stdout_bytes > SEARCH_OUTPUT_BYTES
    for line in result.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            truncated = True  # the cut in over-long output
            continue
        kind, data = event.get("type"), event.get("data", {})
        if kind == "begin":
            pending_before = []
        elif kind == "context":
            text = _text(data.get("lines", {}))
            if matches and matches[-1].path == _path(ctx, data) and data.get("line_number", 0) > matches[-1].line:
                matches[-1].after.append(text)
            else:
                pending_before.append(text)
        elif kind == "match":
            if len(matches) == max_results:
                truncated = True
                break
            submatches = data.get("submatches") or [{}]
            shown = _path(ctx, data)
            files.add(shown)
            matches.append(
                Match(
                    path=shown,
                    line=data.get("line_number") or 0,
                    column=(submatches[0].get("start") or 0) + 1,
                    text=_text(data.get("lines", {})),
                    before=pending_before,
                )
            )
            pending_before = []
    notice = None
    if result.timed_out:
        notice = "the search ran out of time; narrow it with 'path' or 'glob'"
    elif truncated:
        notice = f"more than {max_results} matches; narrow the search or raise max_results"
    return SearchResult(matches=matches, files_with_matches=len(files), truncated=truncated, notice=notice)


def _text(field: dict[str, str]) -> str:
    return field.get("text", "").rstrip("\n") if "text" in field else "[non-UTF-8 line]"


def _path(ctx: CallContext, data: dict[str, dict[str, str]]) -> str:
    raw = data.get("path", {}).get("text", "")
    try:
        return ctx.display(Path(raw))
    except ValueError:
        return raw


class FoundFiles(BaseModel):
    paths: list[str]
    truncated: bool


@toolset.tool(read_only=True, title="Find files by name")
async def find_files(
    ctx: CallContext,
    glob: str,
    path: str = ".",
    include_hidden: bool = False,
    max_results: Annotated[int, Field(ge=1, le=50_000)] = 1000,
) -> FoundFiles:
    """Find files whose path matches a glob (``**/*.py``, ``src/**/test_*.py``, ``*.md``), ``.gitignore``
    respected, sorted by path."""
    start = ctx.path(path)
    found, cut = await list_files(
        ctx.commands, [start], globs=[glob], include_hidden=include_hidden, max_files=max_results
    )
    return FoundFiles(paths=[ctx.display(p) for p in found], truncated=cut)
