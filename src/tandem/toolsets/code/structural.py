"""Structural search and rewrite with ast-grep (``ast-grep-py``): patterns with meta-variables (``print($A)``,
``foo($$$ARGS)``) or full rules (kind / has / inside / regex / constraints), matched on syntax trees.

A rewrite is previewed first (a unified diff, per-file counts and each file's content hash); applying it writes
each file atomically and refuses any file whose hash changed since the preview.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from ast_grep_py import SgNode, SgRoot
from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError, relative_display, text_files, worker_processes, write_atomic
from tandem.core.file_list import list_files
from tandem.toolsets.code.toolset import toolset

LANGUAGES: dict[str, tuple[str, ...]] = {
    "bash": (".sh", ".bash"),
    "c": (".c", ".h"),
    "cpp": (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"),
    "csharp": (".cs",),
    "css": (".css",),
    "dart": (".dart",),
    "elixir": (".ex", ".exs"),
    "go": (".go",),
    "haskell": (".hs",),
    "hcl": (".hcl", ".tf"),
    "html": (".html", ".htm"),
    "java": (".java",),
    "javascript": (".js", ".mjs", ".cjs", ".jsx"),
    "json": (".json",),
    "kotlin": (".kt", ".kts"),
    "lua": (".lua",),
    "nix": (".nix",),
    "php": (".php",),
    "python": (".py", ".pyi"),
    "ruby": (".rb",),
    "rust": (".rs",),
    "scala": (".scala",),
    "solidity": (".sol",),
    "swift": (".swift",),
    "tsx": (".tsx",),
    "typescript": (".ts", ".mts", ".cts"),
    "yaml": (".yaml", ".yml"),
}
"""Every language ast-grep-py parses, with the file extensions that select it."""
_BY_EXTENSION = {ext: language for language, exts in LANGUAGES.items() for ext in exts}
_METAVARIABLE = re.compile(r"\$(\$\$)?([A-Z_][A-Z0-9_]*)")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_FILES = 20_000
MAX_TEXT = 2000
BATCH = 200
"""Files parsed between two progress notifications."""


def language_of(path: Path) -> str | None:
    return _BY_EXTENSION.get(path.suffix.lower())


def _language(name: str) -> str:
    if name not in LANGUAGES:
        raise ToolError(f"unknown language {name!r}; ast_languages lists the {len(LANGUAGES)} supported ones")
    return name


@dataclass(frozen=True, slots=True)
class Query:
    """A pattern or a rule, as ast-grep-py's ``find_all`` takes it, and the meta-variables it can capture."""

    matcher: str | dict[str, Any]
    metavariables: tuple[str, ...]
    language: str | None
    required: tuple[str, ...] = ()
    """Words every match contains: a source without one of them is not parsed at all."""

    @classmethod
    def of(cls, pattern: str | None, rule: str | dict[str, Any] | None, language: str | None) -> Query:
        if (pattern is None) == (rule is None):
            raise ToolError("give either 'pattern' (code with $META variables) or 'rule' (an ast-grep YAML rule)")
        if pattern is not None:
            if not pattern.strip():
                raise ToolError("the pattern is empty")
            # Under ast-grep's default ("smart") strictness every token of a pattern but its meta-variables must
            # match a token of the same text, so each word outside them occurs in any source with a match.
            words = tuple(dict.fromkeys(_WORD.findall(_METAVARIABLE.sub(" ", pattern))))
            return cls(pattern, _names(pattern), language and _language(language), words)
        config = _rule_config(rule)
        rule_language = config.pop("language", None)
        chosen = language or rule_language
        return cls(config, _names(yaml.safe_dump(config)), chosen and _language(str(chosen)))

    def could_match(self, source: str) -> bool:
        return all(word in source for word in self.required)

    def find(self, root: SgNode) -> list[SgNode]:
        if isinstance(self.matcher, str):
            return root.find_all(pattern=self.matcher)
        return root.find_all(self.matcher)  # type: ignore[arg-type]


def _names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(("$$$" if many else "$") + name for many, name in _METAVARIABLE.findall(text)))


def _rule_config(rule: str | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(rule, str):
        try:
            rule = yaml.safe_load(rule)
        except yaml.YAMLError as exc:
            raise ToolError(f"the rule is not valid YAML: {exc}") from None
    if not isinstance(rule, dict) or not rule:
        raise ToolError("a rule is a YAML mapping: {rule: {pattern | kind | regex ..., has / inside ...}}")
    config = dict(rule)
    if "rule" not in config:
        config = {"rule": config}  # a bare rule object
    unknown = set(config) - {"rule", "constraints", "utils", "transform", "language", "id", "message", "severity"}
    if unknown:
        raise ToolError(f"unknown rule keys: {', '.join(sorted(unknown))}")
    for key in ("id", "message", "severity"):
        config.pop(key, None)
    return config


def _parse(text: str, language: str) -> SgNode:
    try:
        return SgRoot(text, language).root()
    except BaseException as exc:  # ast-grep raises a Rust panic (a BaseException) on some input: never let it out
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise ToolError(f"ast-grep could not parse this {language} source: {exc}") from None


def _find(query: Query, root: SgNode, *, nested: bool = False) -> list[SgNode]:
    """The matches in source order; with ``nested`` false, a match inside an earlier one is left out (a rewrite
    replaces the outer one)."""
    try:
        matches = query.find(root)
    except BaseException as exc:  # an invalid rule or pattern surfaces as a Rust panic or a ValueError
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise ToolError(f"ast-grep refused the pattern or rule: {str(exc).splitlines()[0][:300]}") from None
    ordered = sorted(matches, key=lambda m: (m.range().start.index, -m.range().end.index))
    if nested:
        return ordered
    kept: list[SgNode] = []
    last_end = -1
    for match in ordered:
        if match.range().start.index >= last_end:
            kept.append(match)
            last_end = match.range().end.index
    return kept


def _captures(match: SgNode, names: tuple[str, ...]) -> dict[str, str | list[str]]:
    captured: dict[str, str | list[str]] = {}
    for name in names:
        if name.startswith("$$$"):
            nodes = [n for n in match.get_multiple_matches(name[3:]) if n.is_named()]
            captured[name] = [n.text() for n in nodes]
        else:
            node = match.get_match(name[1:])
            if node is not None:
                captured[name] = node.text()
    return captured


def _expand(template: str, match: SgNode, source: str) -> str:
    """The rewrite template with each ``$NAME`` and ``$$$NAME`` replaced by what the match captured."""

    def substitute(found: re.Match[str]) -> str:
        many, name = found.group(1), found.group(2)
        if many:
            nodes = match.get_multiple_matches(name)
            if not nodes:
                return ""
            return source[nodes[0].range().start.index : nodes[-1].range().end.index]
        node = match.get_match(name)
        return node.text() if node is not None else found.group(0)

    return _METAVARIABLE.sub(substitute, template)


class Match(BaseModel):
    path: str
    line: int
    column: int
    text: str
    metavariables: dict[str, str | list[str]] = Field(default_factory=dict)
    before: list[str] = Field(default_factory=list)
    after: list[str] = Field(default_factory=list)


class SearchResult(BaseModel):
    matches: list[Match]
    files_searched: int
    truncated: bool
    skipped: list[str] = Field(default_factory=list, description="Files that could not be read or parsed, and why.")

    def summary(self) -> str:
        files = len({m.path for m in self.matches})
        text = f"{len(self.matches)}{'+' if self.truncated else ''} match(es) in {files} file(s)"
        text += f" ({self.files_searched} searched)"
        return text + (f"; {len(self.skipped)} skipped" if self.skipped else "")


async def _sources(
    ctx: CallContext, paths: list[str] | None, language: str | None
) -> tuple[list[tuple[Path, str]], bool]:
    """The files to search, each with its language: the given language's extensions, or every supported one."""
    roots = [ctx.path(p) for p in (paths or ["."])]
    extensions = LANGUAGES[language] if language else tuple(_BY_EXTENSION)
    globs = [f"*{ext}" for ext in extensions]
    files, cut = await list_files(ctx.commands, roots, globs=globs, max_files=MAX_FILES)
    chosen = []
    for path in files:
        detected = language or language_of(path)
        if detected is not None:
            chosen.append((path, detected))
    return chosen, cut


@toolset.tool(read_only=True, title="Structural search")
async def ast_search(
    ctx: CallContext,
    pattern: str | None = None,
    rule: str | dict[str, Any] | None = None,
    language: str | None = None,
    paths: list[str] | None = None,
    context: Annotated[int, Field(ge=0, le=20)] = 0,
    max_results: Annotated[int, Field(ge=1, le=10_000)] = 200,
) -> SearchResult:
    """Find code by its syntax tree with ast-grep.

    ``pattern`` is code with meta-variables: ``$X`` matches one node, ``$$$ARGS`` any number (``print($A)``,
    ``def $F($$$P): $$$BODY``). ``rule`` is a full ast-grep rule as YAML or an object (``{rule: {kind: call,
    inside: {kind: function_definition}}, constraints: {...}}``). ``language`` (see ast_languages) is inferred from
    file extensions when omitted. Each match has its path, 1-based line and column, text and captured variables.
    """
    query = Query.of(pattern, rule, language)
    files, cut = await _sources(ctx, paths, query.language)
    result = SearchResult(matches=[], files_searched=0, truncated=cut)
    batches = [files[start : start + BATCH] for start in range(0, len(files), BATCH)]
    budget = ctx.settings.max_file_bytes
    calls = [functools.partial(search_files, ctx.workspace, budget, query, b, context, max_results) for b in batches]
    with worker_processes.in_order(calls, ctx.run_sync) as outcomes:
        for batch, outcome in zip(batches, outcomes, strict=True):
            found, skipped = await outcome
            room = max_results - len(result.matches)
            result.matches.extend(found[:room])
            result.skipped.extend(skipped)
            result.files_searched += len(batch)
            if len(found) > room:
                result.truncated = True
                break
            await ctx.report_progress(result.files_searched, len(files), f"{len(result.matches)} matches")
    return result


def search_files(
    workspace: Path, max_bytes: int, query: Query, files: list[tuple[Path, str]], context: int, room: int
) -> tuple[list[Match], list[str]]:
    """The matches in ``files`` (at most ``room`` + 1, so the caller can tell there were more), and the files that
    could not be read or parsed. Runs in a worker thread or a worker process."""
    matches: list[Match] = []
    skipped: list[str] = []
    for path, language in files:
        shown = relative_display(workspace, path)
        try:
            source = text_files.read_text(workspace, path, max_bytes).text
            if not query.could_match(source):
                continue
            root = _parse(source, language)
        except ToolError as exc:
            skipped.append(f"{shown}: {exc}")
            continue
        lines = source.splitlines()
        for node in _find(query, root, nested=True):
            if len(matches) > room:
                return matches, skipped
            start = node.range().start
            text = node.text()
            matches.append(
                Match(
                    path=shown,
                    line=start.line + 1,
                    column=start.column + 1,
                    text=text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " [...]",
                    metavariables=_captures(node, query.metavariables),
                    before=lines[max(0, start.line - context) : start.line] if context else [],
                    after=lines[node.range().end.line + 1 : node.range().end.line + 1 + context] if context else [],
                )
            )
    return matches, skipped


class FileChange(BaseModel):
    path: str
    replacements: int
    sha256: str = Field(description="The file's content hash when previewed; apply refuses it if it changed.")


class RewriteResult(BaseModel):
    applied: bool
    files: list[FileChange]
    diff: str
    skipped: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        count = sum(f.replacements for f in self.files)
        verb = "made" if self.applied else "previewed (dry run; apply with dry_run=false and expected_hashes)"
        text = f"{count} replacement(s) in {len(self.files)} file(s) {verb}"
        return text + (f"; {len(self.skipped)} skipped" if self.skipped else "")


@toolset.tool(destructive=True, title="Structural rewrite")
async def ast_rewrite(
    ctx: CallContext,
    rewrite: str,
    pattern: str | None = None,
    rule: str | dict[str, Any] | None = None,
    language: str | None = None,
    paths: list[str] | None = None,
    dry_run: bool = True,
    expected_hashes: dict[str, str] | None = None,
) -> RewriteResult:
    """Rewrite every match of a pattern or rule with a template that may use its meta-variables
    (``print($A)`` -> ``logger.info($A)``).

    By default a dry run: a unified diff, the replacements per file and each file's sha256. To apply, call again
    with ``dry_run=false`` and ``expected_hashes`` from the preview ({path: sha256}); a file whose content changed
    since is refused, and each file is written atomically.
    """
    query = Query.of(pattern, rule, language)
    files, _ = await _sources(ctx, paths, query.language)
    expected = None
    if expected_hashes is not None:
        expected = {ctx.display(ctx.path(p)): digest.lower() for p, digest in expected_hashes.items()}
        files = [(p, lang) for p, lang in files if ctx.display(p) in expected]

    def plan() -> RewriteResult:
        result = RewriteResult(applied=not dry_run, files=[], diff="")
        diffs: list[str] = []
        pending: list[tuple[Path, bytes]] = []
        for path, lang in files:
            shown = ctx.display(path)
            try:
                content = text_files.read_text(ctx.workspace, path, ctx.settings.max_file_bytes)
                if not query.could_match(content.text):
                    continue
                root = _parse(content.text, lang)
            except ToolError as exc:
                result.skipped.append(f"{shown}: {exc}")
                continue
            matches = _find(query, root)
            if not matches:
                continue
            if expected is not None and expected.get(shown) != content.sha256:
                raise ToolError(f"{shown} changed since the preview; preview the rewrite again")
            edits = [m.replace(_expand(rewrite, m, content.text)) for m in matches]
            new_text = root.commit_edits(edits)
            result.files.append(FileChange(path=shown, replacements=len(matches), sha256=content.sha256))
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        content.text.splitlines(keepends=True),
                        new_text.splitlines(keepends=True),
                        f"a/{shown}",
                        f"b/{shown}",
                    )
                )
            )
            pending.append((path, new_text.encode(content.encoding if content.encoding != "ascii" else "utf-8")))
        if not dry_run:
            for path, data in pending:
                write_atomic(ctx.workspace, path, data)
        result.diff = "".join(diffs) or "(no matches)"
        return result

    return await ctx.run_sync(plan)


@toolset.tool(read_only=True, title="Explain a syntax tree")
def ast_explain(ctx: CallContext, code: str, language: str, max_lines: Annotated[int, Field(ge=1)] = 400) -> str:
    """Show the syntax tree ast-grep sees for a snippet (node kinds, positions, leaf text): what to match on when
    writing a pattern or a ``kind:`` rule."""
    root = _parse(code, _language(language))
    lines: list[str] = []

    def walk(node: SgNode, depth: int) -> None:
        if len(lines) > max_lines:
            return
        start, end = node.range().start, node.range().end
        leaf = "" if node.children() else f" {node.text()[:60]!r}"
        lines.append(
            f"{'  ' * depth}{node.kind()} [{start.line + 1}:{start.column + 1}-{end.line + 1}:{end.column + 1}]{leaf}"
        )
        for child in node.children():
            if child.is_named():
                walk(child, depth + 1)

    walk(root, 0)
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"[... cut at {max_lines} lines]"]
    return "\n".join(lines)


class Languages(BaseModel):
    languages: dict[str, list[str]] = Field(description="Each language name with the file extensions that select it.")

    def summary(self) -> str:
        return f"{len(self.languages)} languages: {', '.join(self.languages)}"


@toolset.tool(read_only=True, title="Structural languages")
def ast_languages() -> Languages:
    """The languages ast_search, ast_rewrite and ast_explain understand, with the file extensions of each."""
    return Languages(languages={name: list(exts) for name, exts in LANGUAGES.items()})
