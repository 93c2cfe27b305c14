"""``scan_unsafe``: a shipped set of ast-grep rules for unsafe code (a shell started from a string, eval / exec,
unsafe YAML or pickle loads, SQL built by formatting, TLS checks turned off, ...), extended or overridden by the
project's own rules in ``.tandem/rules/*.yml``.

A rule file holds one YAML document per rule, in ast-grep's rule format plus Tandem's fields::

    id: no-print
    language: python            # or a list: [javascript, typescript]
    severity: warning           # info | warning | error
    message: what is wrong
    note: how to fix it          # optional
    rule: {pattern: print($$$)}  # any ast-grep rule; constraints / utils may sit beside it

A document ``{disable: [rule-id, ...]}`` turns shipped rules off; a project rule with a shipped rule's id replaces
it. A line can silence a finding with a comment on it or on the line above: ``tandem-ignore`` (every rule) or
``tandem-ignore: rule-id, other-id``.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError, relative_display, text_files, worker_processes
from tandem.core.file_list import list_files
from tandem.toolsets.code.structural import LANGUAGES, Query, _find, _parse, language_of
from tandem.toolsets.code.toolset import toolset

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")
PROJECT_RULES = ".tandem/rules"
BATCH = 200
MAX_FILES = 20_000
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_RULE_KEYS = {"id", "language", "severity", "message", "note", "rule", "constraints", "utils", "url"}
_IGNORE = re.compile(r"tandem-ignore(?::\s*([A-Za-z0-9_.,\s-]+))?")


@dataclass(frozen=True, slots=True)
class UnsafeRule:
    id: str
    languages: tuple[str, ...]
    severity: Severity
    message: str
    note: str
    origin: str
    """``shipped``, or the project file the rule comes from."""
    config: dict[str, Any]
    """What ast-grep matches: ``rule`` and optionally ``constraints`` / ``utils``."""

    def query(self, language: str) -> Query:
        return Query(self.config, (), language)


def _invalid(origin: str, rule_id: str | None, reason: str) -> ToolError:
    which = f"rule {rule_id!r} in {origin}" if rule_id else origin
    return ToolError(f"invalid unsafe-pattern {which}: {reason}")


def parse_rules(text: str, origin: str) -> tuple[list[UnsafeRule], set[str]]:
    """The rules a rule file defines, and the shipped rule ids it disables; a tool error naming the file and rule
    when anything is wrong (nothing is skipped silently)."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise _invalid(origin, None, f"not valid YAML: {str(exc).splitlines()[0]}") from None
    rules: list[UnsafeRule] = []
    disabled: set[str] = set()
    for document in documents:
        if not isinstance(document, dict):
            raise _invalid(origin, None, "each YAML document must be a mapping (a rule, or {disable: [ids]})")
        if set(document) == {"disable"}:
            ids = document["disable"]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise _invalid(origin, None, "'disable' takes a list of rule ids")
            disabled.update(ids)
            continue
        rules.append(_rule(document, origin))
    return rules, disabled


def _rule(document: dict[str, Any], origin: str) -> UnsafeRule:
    rule_id = document.get("id")
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
        raise _invalid(origin, None, f"every rule needs an 'id' (letters, digits, _ . -); got {rule_id!r}")
    unknown = set(document) - _RULE_KEYS
    if unknown:
        raise _invalid(origin, rule_id, f"unknown keys {', '.join(sorted(unknown))}")
    for key in ("message", "rule"):
        if key not in document:
            raise _invalid(origin, rule_id, f"'{key}' is missing")
    if not isinstance(document["message"], str) or not isinstance(document.get("note", ""), str):
        raise _invalid(origin, rule_id, "'message' and 'note' are text")
    language = document.get("language")
    languages = tuple(language) if isinstance(language, list) else (language,)
    unknown_languages = [str(lang) for lang in languages if lang not in LANGUAGES]
    if not languages or unknown_languages:
        raise _invalid(
            origin,
            rule_id,
            f"unknown language {', '.join(unknown_languages) or 'none given'} (ast_languages lists them)",
        )
    severity = document.get("severity", "warning")
    if severity not in SEVERITIES:
        raise _invalid(origin, rule_id, f"severity is one of {', '.join(SEVERITIES)}; got {severity!r}")
    config = {k: document[k] for k in ("rule", "constraints", "utils") if k in document}
    rule = UnsafeRule(rule_id, languages, severity, document["message"], document.get("note", ""), origin, config)
    for lang in languages:  # ast-grep checks a rule when it first matches: do it now, on an empty tree
        try:
            _find(rule.query(lang), _parse("", lang))
        except ToolError as exc:
            raise _invalid(origin, rule_id, str(exc)) from None
    return rule


@functools.cache
def shipped_rules() -> tuple[UnsafeRule, ...]:
    """The rules shipped in ``tandem/toolsets/code/rules/*.yml``."""
    rules: list[UnsafeRule] = []
    folder = resources.files("tandem.toolsets.code") / "rules"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yml", ".yaml")):
            rules += parse_rules(entry.read_text(encoding="utf-8"), "shipped")[0]
    return tuple(rules)


def project_rules(ctx: CallContext) -> tuple[list[UnsafeRule], set[str]]:
    folder = ctx.path(PROJECT_RULES)
    if not folder.is_dir():
        return [], set()
    rules: list[UnsafeRule] = []
    disabled: set[str] = set()
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yml", ".yaml"):
            continue
        confined = ctx.path(ctx.display(path))  # a linked rule file must stay in the workspace too
        found, off = parse_rules(text_files.read_text(ctx.workspace, confined, 1024 * 1024).text, ctx.display(path))
        rules += found
        disabled |= off
    return rules, disabled


def active_rules(ctx: CallContext, ids: list[str] | None, minimum: Severity) -> list[UnsafeRule]:
    own, disabled = project_rules(ctx)
    by_id = {r.id: r for r in shipped_rules() if r.id not in disabled}
    by_id.update({r.id: r for r in own})
    if ids:
        unknown = sorted(set(ids) - set(by_id))
        if unknown:
            raise ToolError(f"unknown rule ids: {', '.join(unknown)}; known: {', '.join(sorted(by_id))}")
    floor = SEVERITIES.index(minimum)
    return [r for r in by_id.values() if (not ids or r.id in ids) and SEVERITIES.index(r.severity) >= floor]


class Finding(BaseModel):
    rule: str
    severity: Severity
    message: str
    note: str = Field(description="How to fix it.")
    path: str
    line: int = Field(description="1-based.")
    column: int = Field(description="1-based.")
    end_line: int
    code: str = Field(description="The first line of the matched code, trimmed.")


class RuleInfo(BaseModel):
    id: str
    languages: list[str]
    severity: Severity
    origin: str


class UnsafeReport(BaseModel):
    findings: list[Finding]
    counts: dict[str, int] = Field(description="Findings per rule id, all of them (also past max_results).")
    files_scanned: int
    suppressed: int = Field(0, description="Findings silenced by a tandem-ignore comment.")
    rules: list[RuleInfo]
    skipped: list[str] = Field(default_factory=list, description="Files that could not be read or parsed.")
    truncated: bool = False

    def summary(self) -> str:
        total = sum(self.counts.values())
        if not total:
            return f"no unsafe patterns in {self.files_scanned} file(s) ({len(self.rules)} rules)"
        files = len({f.path for f in self.findings})
        top = ", ".join(f"{rule} x{n}" for rule, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        lines = [f"{total} unsafe pattern(s) in {files} file(s): {top}"]
        lines += [f"{f.path}:{f.line}:{f.column}: {f.severity} {f.rule}: {f.message}" for f in self.findings[:20]]
        return "\n".join(lines)


def _silenced(lines: list[str], line: int, rule_id: str) -> bool:
    for index in (line, line - 1):
        if 0 <= index < len(lines):
            found = _IGNORE.search(lines[index])
            if found and (found.group(1) is None or rule_id in re.split(r"[\s,]+", found.group(1).strip())):
                return True
    return False


def scan_files(
    workspace: Path, max_bytes: int, rules: list[UnsafeRule], files: list[tuple[Path, str]]
) -> tuple[list[Finding], int, list[str]]:
    """The findings in ``files``, how many were silenced, and the files that could not be read or parsed. Runs in a
    worker thread or a worker process."""
    findings: list[Finding] = []
    silenced = 0
    skipped: list[str] = []
    for path, language in files:
        shown = relative_display(workspace, path)
        applicable = [r for r in rules if language in r.languages]
        try:
            source = text_files.read_text(workspace, path, max_bytes).text
            root = _parse(source, language)
        except ToolError as exc:
            skipped.append(f"{shown}: {exc}")
            continue
        lines = source.splitlines()
        for rule in applicable:
            for node in _find(rule.query(language), root):
                span = node.range()
                if _silenced(lines, span.start.line, rule.id):
                    silenced += 1
                    continue
                first = node.text().splitlines()[0] if node.text() else ""
                findings.append(
                    Finding(
                        rule=rule.id,
                        severity=rule.severity,
                        message=rule.message,
                        note=rule.note,
                        path=shown,
                        line=span.start.line + 1,
                        column=span.start.column + 1,
                        end_line=span.end.line + 1,
                        code=first.strip()[:200],
                    )
                )
    findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule))
    return findings, silenced, skipped


async def scan(
    ctx: CallContext,
    paths: list[str] | None = None,
    rules: list[str] | None = None,
    min_severity: Severity = "info",
    max_results: int = 500,
) -> UnsafeReport:
    chosen = active_rules(ctx, rules, min_severity)
    languages = {lang for rule in chosen for lang in rule.languages}
    roots = [ctx.path(p) for p in (paths or ["."])]
    globs = [f"*{ext}" for lang in sorted(languages) for ext in LANGUAGES[lang]]
    listed, cut = await list_files(ctx.commands, roots, globs=globs, max_files=MAX_FILES) if globs else ([], False)
    files = [(f, lang) for f in listed if (lang := language_of(f)) in languages]
    batches = [files[start : start + BATCH] for start in range(0, len(files), BATCH)]
    budget = ctx.settings.max_file_bytes
    futures: list[Future[tuple[list[Finding], int, list[str]]]] = []
    if len(batches) > 2 and worker_processes.worker_count() > 1:
        futures = [worker_processes.submit(scan_files, ctx.workspace, budget, chosen, batch) for batch in batches]
        outcomes = (worker_processes.result(future) for future in futures)
    else:
        outcomes = (
            ctx.run_sync(functools.partial(scan_files, ctx.workspace, budget, chosen, batch)) for batch in batches
        )
    report = UnsafeReport(
        findings=[],
        counts={},
        files_scanned=0,
        rules=[RuleInfo(id=r.id, languages=list(r.languages), severity=r.severity, origin=r.origin) for r in chosen],
        truncated=cut,
    )
    counts: Counter[str] = Counter()
    try:
        for batch, outcome in zip(batches, outcomes, strict=True):
            found, silenced, skipped = await outcome
            counts.update(f.rule for f in found)
            report.findings.extend(found[: max(0, max_results - len(report.findings))])
            report.truncated |= sum(counts.values()) > max_results
            report.suppressed += silenced
            report.skipped += skipped
            report.files_scanned += len(batch)
            await ctx.report_progress(report.files_scanned, len(files), f"{sum(counts.values())} findings")
    finally:
        for future in futures:
            future.cancel()
    report.counts = dict(counts)
    return report


@toolset.tool(read_only=True, title="Scan for unsafe code")
async def scan_unsafe(
    ctx: CallContext,
    paths: list[str] | None = None,
    rules: list[str] | None = None,
    min_severity: Severity = "info",
    max_results: Annotated[int, Field(ge=1, le=10_000)] = 500,
) -> UnsafeReport:
    """Find unsafe code patterns with ast-grep rules: a shell run from a string (``shell=True``, ``os.system``,
    ``child_process.exec``), ``eval`` / ``exec`` / ``new Function`` on non-literals, ``yaml.load`` without a safe
    loader, pickle / marshal loads, SQL built by string formatting, ``verify=False``, ``tempfile.mktemp``, MD5 /
    SHA-1, ``innerHTML`` / ``document.write``.

    Each finding has the rule, severity, message, a note on how to fix it, and its path, line and column.
    ``rules`` limits the scan to those rule ids; ``min_severity`` drops lesser findings. The project adds or
    replaces rules in ``.tandem/rules/*.yml`` (ast-grep rule format with id, language, severity, message, note;
    ``{disable: [ids]}`` turns shipped ones off); a ``tandem-ignore`` or ``tandem-ignore: rule-id`` comment on the
    line or the line above silences a finding.
    """
    return await scan(ctx, paths, rules, min_severity, max_results)
