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
it. A line can silence a finding with a comment on it or on a comment line just above: ``tandem-ignore`` (every
rule) or ``tandem-ignore: rule-id, other-id``.

A file is parsed only when it holds the text some rule needs: the words of its patterns and the literal parts of
its regexes (outside any ``not``), so most files of a large tree are read and never parsed.
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from ast_grep_py import SgNode
from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError, relative_display, text_files, worker_processes
from tandem.core.file_list import list_files
from tandem.toolsets.code.structural import LANGUAGES, Query, _find, _parse, language_of
from tandem.toolsets.code.toolset import toolset

# The standard library's own regex parser (private, hence guarded), read only for the literal text a rule's regex
# needs: ast-grep's regexes are Rust's, which agrees with Python on literals, groups, alternation and repeats; a
# regex Python does not parse, or a Python without this parser, needs nothing (every file is parsed).
try:
    from re import _parser as _regex_parser
    from re._constants import BRANCH, LITERAL, MAX_REPEAT, MIN_REPEAT, SUBPATTERN
except ImportError:  # pragma: no cover - a future Python that moved it
    _regex_parser = None  # type: ignore[assignment]

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")
PROJECT_RULES = ".tandem/rules"
MAX_RULE_FILE = 1024 * 1024
BATCH = 200
MAX_FILES = 20_000
MAX_SNIPPET_LINES = 5
MAX_SNIPPET_WIDTH = 200
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_RULE_KEYS = {"id", "language", "severity", "message", "note", "rule", "constraints", "utils", "url"}
_IGNORE = re.compile(r"tandem-ignore(?::\s*([A-Za-z0-9_.,\s-]+))?")
_COMMENT_LINE = re.compile(r"\s*(#|//|/\*|\*|--|;)")
_CAUSE = re.compile(r"^\s*\d+:\s*", re.MULTILINE)

Needs = tuple[frozenset[str], ...]
"""Text a file must hold for a rule to match in it: at least one string of each set."""


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
    needs: Needs = ()

    def query(self, language: str) -> Query:
        return Query(self.config, (), language)

    def could_match(self, source: str) -> bool:
        return all(any(text in source for text in choice) for choice in self.needs)


def _invalid(origin: str, rule_id: str | None, reason: str) -> ToolError:
    which = f"rule {rule_id!r} in {origin}" if rule_id else origin
    return ToolError(f"invalid unsafe-pattern {which}: {reason}")


def parse_rules(text: str, origin: str) -> tuple[list[UnsafeRule], set[str]]:
    """The rules a rule file defines, and the shipped rule ids it disables; a tool error naming the file and rule
    when anything is wrong (nothing is skipped silently)."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise _invalid(origin, None, f"not valid YAML: {' '.join(str(exc).split())}") from None
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
        rule = _rule(document, origin)
        if any(r.id == rule.id for r in rules):
            raise _invalid(origin, rule.id, "the id is used twice in this file")
        rules.append(rule)
    return rules, disabled


def _rule(document: dict[str, Any], origin: str) -> UnsafeRule:
    rule_id = document.get("id")
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
        raise _invalid(origin, None, f"every rule needs an 'id' (letters, digits, _ . -); got {rule_id!r}")
    unknown = set(map(str, document)) - _RULE_KEYS
    if unknown:
        raise _invalid(origin, rule_id, f"unknown keys {', '.join(sorted(unknown))}")
    for key in ("language", "message", "rule"):
        if key not in document:
            raise _invalid(origin, rule_id, f"'{key}' is missing")
    if not isinstance(document["message"], str) or not isinstance(document.get("note", ""), str):
        raise _invalid(origin, rule_id, "'message' and 'note' are text")
    language = document["language"]
    languages = tuple(language) if isinstance(language, list) else (language,)
    unknown_languages = [str(lang) for lang in languages if not isinstance(lang, str) or lang not in LANGUAGES]
    if not languages:
        raise _invalid(origin, rule_id, "'language' is an empty list")
    if unknown_languages:
        raise _invalid(origin, rule_id, f"unknown language {', '.join(unknown_languages)} (ast_languages lists them)")
    severity = document.get("severity", "warning")
    if severity not in SEVERITIES:
        raise _invalid(origin, rule_id, f"severity is one of {', '.join(SEVERITIES)}; got {severity!r}")
    config = {k: document[k] for k in ("rule", "constraints", "utils") if k in document}
    for lang in languages:  # ast-grep checks a rule when it first matches: do it now, on an empty tree
        try:
            _parse("", lang).find_all(config)  # type: ignore[arg-type]
        except BaseException as exc:  # a refused rule surfaces as a RuntimeError, a ValueError or a Rust panic
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise _invalid(origin, rule_id, f"ast-grep refused it for {lang}: {_refusal(exc)}") from None
    utils = config.get("utils") if isinstance(config.get("utils"), dict) else {}
    needs = tuple(dict.fromkeys(_needs(config["rule"], utils, frozenset())))
    return UnsafeRule(
        rule_id, languages, severity, document["message"], document.get("note", ""), origin, config, needs
    )


def _refusal(exc: BaseException) -> str:
    """ast-grep's reason for refusing a rule: the causes it chains, without the generic ones and the backtrace."""
    text = str(exc).split("Stack backtrace:")[0]
    if "Caused by:" not in text:
        return " ".join(text.split())[:500]
    causes = [" ".join(c.split()) for c in _CAUSE.split(text.split("Caused by:", 1)[1])]
    return " ".join(c for c in causes if c and not c.endswith("is not configured correctly."))[:500]


def _needs(rule: Any, utils: dict[str, Any], seen: frozenset[str]) -> list[frozenset[str]]:
    """What a file must hold for ``rule`` to match in it (see ``Needs``). Only what is certain: pattern words
    (ast-grep's default strictness matches every other token of a pattern by its text), the literal runs of
    regexes, through ``all``, ``any``, relations and ``matches``; nothing under ``not``."""
    if not isinstance(rule, dict):
        return []
    needs: list[frozenset[str]] = []
    if isinstance(rule.get("pattern"), str):
        needs += [frozenset([word]) for word in Query.of(rule["pattern"], None, None).required]
    if isinstance(rule.get("regex"), str):
        needs += _regex_needs(rule["regex"])
    for relation in ("has", "inside", "follows", "precedes"):
        needs += _needs(rule.get(relation), utils, seen)
    for part in rule.get("all") or ():
        needs += _needs(part, utils, seen)
    alternatives = [_needs(part, utils, seen) for part in rule.get("any") or ()]
    if alternatives and all(alternatives):
        needs.append(_choice(text for a in alternatives for text in _strongest(a)))
    name = rule.get("matches")
    if isinstance(name, str) and name in utils and name not in seen:
        needs += _needs(utils[name], utils, seen | {name})
    return needs


def _strongest(needs: list[frozenset[str]]) -> frozenset[str]:
    """The requirement that rules out the most files: its shortest text the longest, then the fewest choices."""
    return max(needs, key=lambda choice: (min(map(len, choice)), -len(choice)))


def _choice(texts: Iterable[str]) -> frozenset[str]:
    """A requirement that one of ``texts`` occurs; a text that holds another of them adds nothing."""
    unique = set(texts)
    return frozenset(text for text in unique if not any(other != text and other in text for other in unique))


def _regex_needs(regex: str) -> list[frozenset[str]]:
    if _regex_parser is None:
        return []
    try:
        parsed = _regex_parser.parse(regex)
    except Exception:  # Rust syntax Python's parser does not take: no requirement
        return []
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return []
    return _literal_runs(parsed)


def _literal_runs(items: Any, prefix: str = "") -> list[frozenset[str]]:
    """The literal runs a match of the parsed regex ``items`` holds. ``prefix`` is literal text just before them:
    Python's parser takes a shared start out of alternatives (``eval|exec`` is ``e(?:val|xec)``); it goes back on."""
    needs: list[frozenset[str]] = []
    run = list(prefix)
    for op, value in items:
        if op is LITERAL:
            run.append(chr(value))
            continue
        if op is BRANCH and run and all(branch and branch[0][0] is LITERAL for branch in value[1]):
            branches = [_literal_runs(branch, "".join(run)) for branch in value[1]]
            needs.append(_choice(text for b in branches for text in _strongest(b)))
            run = []
            continue
        if run:
            needs.append(frozenset(["".join(run)]))
            run = []
        if op is SUBPATTERN and not value[1]:  # a group that turns no flag on (such as (?i:...))
            needs += _literal_runs(value[3])
        elif op is BRANCH:
            branches = [_literal_runs(branch) for branch in value[1]]
            if all(branches):
                needs.append(_choice(text for b in branches for text in _strongest(b)))
        elif op in (MAX_REPEAT, MIN_REPEAT) and value[0] >= 1:
            needs += _literal_runs(value[2])
    if run:
        needs.append(frozenset(["".join(run)]))
    return needs


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
    """The rules of ``.tandem/rules/*.yml`` and the shipped ids they disable; every file read through the
    workspace confinement."""
    folder = ctx.path(PROJECT_RULES)
    if not folder.is_dir():
        return [], set()
    rules: dict[str, UnsafeRule] = {}
    disabled: set[str] = set()
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yml", ".yaml"):
            continue
        shown = ctx.display(path)
        confined = ctx.path(shown)  # a linked rule file must stay in the workspace too
        found, off = parse_rules(text_files.read_text(ctx.workspace, confined, MAX_RULE_FILE).text, shown)
        for rule in found:
            if rule.id in rules:
                raise _invalid(shown, rule.id, f"the id is already defined in {rules[rule.id].origin}")
            rules[rule.id] = rule
        disabled |= off
    return list(rules.values()), disabled


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
    snippet: str = Field(description=f"The matched source lines (at most {MAX_SNIPPET_LINES}), dedented.")


class RuleInfo(BaseModel):
    id: str
    languages: list[str]
    severity: Severity
    origin: str = Field(description="'shipped', or the project rule file it comes from.")


class UnsafeReport(BaseModel):
    findings: list[Finding]
    total: int = Field(0, description="All findings, also those past max_results.")
    counts: dict[str, int] = Field(description="Findings per rule id, all of them (also past max_results).")
    files_with_findings: int = 0
    files_scanned: int
    suppressed: int = Field(0, description="Findings silenced by a tandem-ignore comment.")
    rules: list[RuleInfo]
    skipped: list[str] = Field(default_factory=list, description="Files that could not be read or parsed.")
    truncated: bool = False

    def summary(self) -> str:
        if not self.total:
            text = f"no unsafe patterns in {self.files_scanned} file(s) ({len(self.rules)} rules)"
        else:
            top = ", ".join(f"{rule} x{n}" for rule, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
            text = f"{self.total} unsafe pattern(s) in {self.files_with_findings} file(s) ({top})"
        notes = [f"{self.suppressed} silenced by tandem-ignore"] if self.suppressed else []
        notes += [f"{len(self.skipped)} file(s) skipped"] if self.skipped else []
        notes += [f"{len(self.findings)} shown"] if len(self.findings) < self.total else []
        lines = [text + "".join(f"; {note}" for note in notes)]
        lines += [f"{f.path}:{f.line}:{f.column}: {f.severity} {f.rule}: {f.message}" for f in self.findings[:20]]
        return "\n".join(lines)


def _silenced(lines: list[str], line: int, rule_id: str) -> bool:
    """A ``tandem-ignore`` comment on the line, or on a comment line just above it, covers this rule."""
    for index in (line, line - 1):
        if not 0 <= index < len(lines):
            continue
        found = _IGNORE.search(lines[index])
        if not found or (index < line and not _COMMENT_LINE.match(lines[index])):
            continue
        if found.group(1) is None or rule_id in re.split(r"[\s,]+", found.group(1).strip()):
            return True
    return False


def _snippet(lines: list[str], node: SgNode) -> str:
    span = node.range()
    last = min(span.end.line, span.start.line + MAX_SNIPPET_LINES - 1)
    shown = [line.rstrip("\r") for line in lines[span.start.line : last + 1]]
    if any(len(line) > MAX_SNIPPET_WIDTH for line in shown):  # minified code: the match itself, not its lines
        shown = node.text().split("\n")[:MAX_SNIPPET_LINES]
    text = "\n".join(line if len(line) <= MAX_SNIPPET_WIDTH else line[:MAX_SNIPPET_WIDTH] + " [...]" for line in shown)
    return textwrap.dedent(text).strip() + ("\n[...]" if last < span.end.line else "")


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
        try:
            source = text_files.read_text(workspace, path, max_bytes).text
            applicable = [r for r in rules if language in r.languages and r.could_match(source)]
            if not applicable:
                continue
            root = _parse(source, language)
        except ToolError as exc:
            skipped.append(f"{shown}: {exc}")
            continue
        lines = source.split("\n")  # ast-grep counts lines by \n alone
        for rule in applicable:
            for node in _find(rule.query(language), root):
                span = node.range()
                if _silenced(lines, span.start.line, rule.id):
                    silenced += 1
                    continue
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
                        snippet=_snippet(lines, node),
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
    roots = [ctx.path(p) for p in (paths or ["."])]
    chosen = await ctx.run_sync(functools.partial(active_rules, ctx, rules, min_severity))
    languages = {lang for rule in chosen for lang in rule.languages}
    globs = [f"*{ext}" for lang in sorted(languages) for ext in LANGUAGES[lang]]
    listed, cut = await list_files(ctx.commands, roots, globs=globs, max_files=MAX_FILES) if globs else ([], False)
    files = [(f, lang) for f in listed if (lang := language_of(f)) in languages]
    batches = [files[start : start + BATCH] for start in range(0, len(files), BATCH)]
    budget = ctx.settings.max_file_bytes
    report = UnsafeReport(
        findings=[],
        counts={},
        files_scanned=0,
        rules=[RuleInfo(id=r.id, languages=list(r.languages), severity=r.severity, origin=r.origin) for r in chosen],
        truncated=cut,
    )
    counts: Counter[str] = Counter()
    calls = [functools.partial(scan_files, ctx.workspace, budget, chosen, batch) for batch in batches]
    with worker_processes.in_order(calls, ctx.run_sync) as outcomes:
        for batch, outcome in zip(batches, outcomes, strict=True):
            found, silenced, skipped = await outcome
            counts.update(f.rule for f in found)
            report.files_with_findings += len({f.path for f in found})
            report.findings.extend(found[: max(0, max_results - len(report.findings))])
            report.suppressed += silenced
            report.skipped += skipped
            report.files_scanned += len(batch)
            await ctx.report_progress(report.files_scanned, len(files), f"{counts.total()} findings")
    report.counts = dict(counts)
    report.total = counts.total()
    report.truncated |= report.total > len(report.findings)
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
    ``os.popen``, ``child_process.exec``), ``eval`` / ``exec`` / ``new Function`` on non-literals, ``yaml.load``
    without a safe loader, pickle / marshal loads, SQL built by string formatting, ``verify=False``,
    ``tempfile.mktemp``, MD5 / SHA-1, ``innerHTML`` / ``document.write``. Python, JavaScript and TypeScript.

    Each finding has the rule, severity, message, a note on how to fix it, its path, 1-based line and column and
    the matched lines. ``paths`` limits the scan to those files and folders; ``rules`` to those rule ids;
    ``min_severity`` (info, warning, error) drops lesser findings. The report counts findings per rule (all of
    them, also past ``max_results``) and lists the rules used with where each comes from.

    Project rules: every ``.tandem/rules/*.yml`` (or ``.yaml``) holds YAML documents in ast-grep's rule format with
    ``id``, ``language`` (a name or a list), ``severity``, ``message`` and ``note`` beside ``rule`` (and optional
    ``constraints`` / ``utils``). A project rule with a shipped rule's id replaces it; a document
    ``{disable: [rule-id, ...]}`` turns shipped rules off. An invalid rule file is an error naming the file, the
    rule and the reason. A ``tandem-ignore`` (or ``tandem-ignore: rule-id``) comment on the line, or on a comment
    line just above, silences a finding.
    """
    return await scan(ctx, paths, rules, min_severity, max_results)
