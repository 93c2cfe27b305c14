"""The project's policy: machine-checkable rules from ``.tandem/policy.toml`` and from the rules ``CLAUDE.md`` /
``AGENTS.md`` state in a recognisable form, and the check of a change against them.

``policy.toml``::

    forbidden_paths = ["vendor/**", "*.pem"]
    max_file_lines = 800
    commit_message = "conventional"        # or a regular expression the subject line must match
    warnings = ["max_file_lines"]          # rule kinds or ids reported but never refused

    [[forbidden_patterns]]
    id = "no-print"
    regex = 'print\\('
    paths = ["src/**/*.py"]
    message = "log through logging, not print"

    [[forbidden_patterns]]
    id = "no-eval"
    ast_grep = "eval($X)"                  # an ast-grep pattern; the language comes from the file's extension

    [[required_tests]]
    modules = "src/**/*.py"                # a changed module matching this ...
    tests = "tests/**/test_{stem}.py"      # ... needs a test file matching this ({stem}, {name}, {parent})

An instruction file adds rules by a fenced block tagged ``tandem-policy`` (the same TOML) and by sentences of these
forms, a rule per line: "Never edit `path`" (also do not modify / change / touch), "Never use `code`", "Files must
not exceed N lines" (also keep files under N lines, at most N lines per file), "Commit messages must follow
Conventional Commits".
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pathspec
from ast_grep_py import SgRoot
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tandem.core import ToolError, syntax_trees

Level = Literal["error", "warning"]
RuleKind = Literal["forbidden_path", "forbidden_pattern", "max_file_lines", "required_tests", "commit_message"]

CONVENTIONAL = r"^(feat|fix|docs|style|refactor|perf|test|build|ci|chore|revert)(\([\w./-]+\))?!?: \S"
"""Conventional Commits' subject line: ``type(scope)!: description``."""


class PatternRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = ""
    regex: str | None = None
    ast_grep: str | None = None
    language: str | None = Field(None, description="The ast-grep language; default: from the file's extension.")
    paths: list[str] = Field(default_factory=lambda: ["**"])
    message: str = ""
    source: str = ""

    @model_validator(mode="after")
    def _one_matcher(self) -> PatternRule:
        if (self.regex is None) == (self.ast_grep is None):
            raise ValueError("a forbidden pattern has exactly one of regex or ast_grep")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from None
        if not self.id:
            self.id = self.regex or self.ast_grep or ""
        return self


class RequiredTests(BaseModel):
    model_config = ConfigDict(extra="forbid")

    modules: str
    tests: str
    source: str = ""


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    forbidden_paths: list[str] = Field(default_factory=list)
    forbidden_patterns: list[PatternRule] = Field(default_factory=list)
    max_file_lines: int | None = Field(None, gt=0)
    required_tests: list[RequiredTests] = Field(default_factory=list)
    commit_message: str | None = None
    warnings: list[str] = Field(default_factory=list)
    exempt: list[str] = Field(
        default_factory=list, description="Files pattern rules skip: the instruction files that state the rules."
    )
    sources: dict[str, str] = Field(default_factory=dict, description="Where each scalar rule was stated.")
    notes: list[str] = Field(default_factory=list, description="What could not be read into the policy, and why.")

    @field_validator("commit_message")
    @classmethod
    def _message_pattern(cls, value: str | None) -> str | None:
        if value is None or value == "conventional":
            return value
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"commit_message {value!r} does not compile: {exc}") from None
        return value

    def level(self, kind: RuleKind, rule: str) -> Level:
        return "warning" if kind in self.warnings or rule in self.warnings else "error"

    def rule_count(self) -> int:
        return (
            len(self.forbidden_paths)
            + len(self.forbidden_patterns)
            + len(self.required_tests)
            + (self.max_file_lines is not None)
            + (self.commit_message is not None)
        )

    def merge(self, other: Policy) -> None:
        """Add ``other``'s rules; a scalar rule (file length, message format) stated twice keeps the stricter or
        the first."""
        self.forbidden_paths += [p for p in other.forbidden_paths if p not in self.forbidden_paths]
        self.forbidden_patterns += other.forbidden_patterns
        self.required_tests += other.required_tests
        self.warnings += [w for w in other.warnings if w not in self.warnings]
        if other.max_file_lines is not None and (
            self.max_file_lines is None or other.max_file_lines < self.max_file_lines
        ):
            self.max_file_lines = other.max_file_lines
            self.sources["max_file_lines"] = other.sources.get("max_file_lines", "")
        if self.commit_message is None and other.commit_message is not None:
            self.commit_message = other.commit_message
            self.sources["commit_message"] = other.sources.get("commit_message", "")
        for path, source in other.sources.items():
            self.sources.setdefault(path, source)


class Violation(BaseModel):
    rule: str = Field(description="The rule's id or kind.")
    kind: RuleKind
    file: str | None = None
    line: int | None = None
    message: str
    level: Level
    source: str = Field("", description="Where the rule is stated (policy.toml, CLAUDE.md:12, ...).")

    def line_text(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else f"{self.file}: " if self.file else ""
        origin = f" [{self.source}]" if self.source else ""
        return f"{self.level}: {where}{self.message} ({self.rule}){origin}"


def _toml_policy(text: str, source: str) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ToolError(f"{source} is not valid TOML: {exc}") from None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ToolError(f"{source}: {problems}") from None
    for rule in [*policy.forbidden_patterns, *policy.required_tests]:
        rule.source = rule.source or source
    for path in policy.forbidden_paths:
        policy.sources.setdefault(path, source)
    for key in ("max_file_lines", "commit_message"):
        if getattr(policy, key) is not None:
            policy.sources.setdefault(key, source)
    return policy


_FENCE = re.compile(r"^```+\s*toml\s+tandem-policy\s*\n(.*?)^```+\s*$", re.MULTILINE | re.DOTALL)
_NEVER = r"(?:never|do\s+not|don't|must\s+not|must\s+never)"
_EDIT = re.compile(rf"\b{_NEVER}\s+(?:edit|modify|change|touch|write\s+to|commit\s+to)\b", re.IGNORECASE)
_USE = re.compile(rf"\b{_NEVER}\s+(?:use|call|add)\b", re.IGNORECASE)
_CODE = re.compile(r"`([^`\n]{1,200})`")
_HEDGED = re.compile(
    r"\b(?:instead|rather|outside|except|unless|without|other\s+than|only\s+if|only\s+when|but)\b", re.IGNORECASE
)
"""A rule stated with a condition or an alternative is not one a regular expression can check; it is left out."""
_FILES = r"(?:files?|modules?|source\s+files?)"
_LINES = re.compile(
    rf"\b{_FILES}\s+(?:must|should|shall)\s+(?:not|never)\s+(?:exceed|be\s+(?:longer|more)\s+than|have\s+more\s+than)"
    rf"\s+(\d{{2,6}})\s+lines\b"
    rf"|\b{_FILES}\s+(?:must|should|shall)\s+(?:be|stay)\s+(?:under|below|at\s+most|within|shorter\s+than|"
    rf"no\s+(?:longer|more)\s+than)\s+(\d{{2,6}})\s+lines\b"
    rf"|\bkeep\s+{_FILES}\s+(?:under|below|within|shorter\s+than|to\s+at\s+most)\s+(\d{{2,6}})\s+lines\b"
    rf"|\b(?:at\s+most|max(?:imum)?|no\s+more\s+than)\s+(\d{{2,6}})\s+lines\s+(?:per|in\s+a|in\s+any)\s+"
    r"(?:file|module)\b",
    re.IGNORECASE,
)
_CONVENTIONAL_SENTENCE = re.compile(
    r"\bcommit\s+messages?\s+(?:must|should|shall)\s+(?:follow|use)\s+(?:the\s+)?conventional\s+commits?\b",
    re.IGNORECASE,
)
MAX_INSTRUCTION_BYTES = 1024 * 1024
MAX_RULE_LINE = 2_000
"""Longer lines (a pasted table, a minified blob) are not read for rules."""


def _literal(code: str) -> str:
    """A regular expression for ``code`` as a whole word where it starts or ends with one (``print`` does not
    match ``fingerprint``)."""
    pattern = re.escape(code)
    if re.match(r"\w", code):
        pattern = r"(?<![\w.])" + pattern
    if re.search(r"\w$", code):
        pattern += r"(?!\w)"
    return pattern


def _first_code(line: str, after: int) -> str | None:
    found = _CODE.search(line, after)
    return found.group(1) if found else None


def instruction_policy(text: str, source: str) -> Policy:
    """The rules an instruction file (CLAUDE.md, AGENTS.md) states in a form this module recognises: a
    ``tandem-policy`` block, and plain imperative sentences without conditions (one rule each)."""
    policy = Policy()
    text = text[:MAX_INSTRUCTION_BYTES]
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        policy.merge(_toml_policy(match.group(1), f"{source}:{line}"))
    fenced = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    offset = 0
    for number, line in enumerate(text.splitlines(), 1):
        start, offset = offset, offset + len(line) + 1
        if len(line) > MAX_RULE_LINE or any(a <= start < b for a, b in fenced):
            continue
        where = f"{source}:{number}"
        said = line.strip().lstrip("-*> ").strip()
        hedged = _HEDGED.search(line) is not None
        if (edit := _EDIT.search(line)) is not None and not hedged:
            path = _first_code(line, edit.end())
            if path is not None and path not in policy.forbidden_paths:
                policy.forbidden_paths.append(path)
                policy.sources[path] = where
        elif (use := _USE.search(line)) is not None and not hedged:
            code = _first_code(line, use.end())
            if code is not None:
                policy.forbidden_patterns.append(
                    PatternRule(id=f"never use {code}", regex=_literal(code), message=said, source=where)
                )
        if (found := _LINES.search(line)) is not None:
            limit = int(next(g for g in found.groups() if g))
            if policy.max_file_lines is None or limit < policy.max_file_lines:
                policy.max_file_lines = limit
                policy.sources["max_file_lines"] = where
        if _CONVENTIONAL_SENTENCE.search(line) and policy.commit_message is None:
            policy.commit_message = "conventional"
            policy.sources["commit_message"] = where
    return policy


def load_policy(workspace: Path, policy_file: Path, instruction_files: Iterable[Path]) -> Policy:
    """The policy of the workspace: the policy file (if there is one), then each instruction file's rules."""
    policy = Policy()
    if policy_file.is_file():
        shown = _shown(workspace, policy_file)
        try:
            text = policy_file.read_text("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{shown} is not UTF-8 text") from None
        policy.merge(_toml_policy(text, shown))
    for path in instruction_files:
        if path.is_file():
            shown = _shown(workspace, path)
            with path.open("rb") as handle:
                text = handle.read(MAX_INSTRUCTION_BYTES).decode("utf-8", errors="replace")
            policy.merge(instruction_policy(text, shown))
            policy.exempt.append(shown)
    return policy


def _shown(workspace: Path, path: Path) -> str:
    try:
        return path.relative_to(workspace).as_posix()
    except ValueError:
        return path.name


@dataclass
class Change:
    """One file of a change, its path relative to the workspace.

    ``added``: the added lines by number in the new file (``None``: the whole file is new to the check). ``text``:
    the file after the change, when it is known (the change is in the workspace); ``lines``: its length after the
    change, when only that is known (a diff not applied yet).
    """

    path: str
    added: dict[int, str] | None
    text: str | None
    deleted: bool = False
    lines: int | None = None
    notes: list[str] = field(default_factory=list)

    def length(self) -> int | None:
        if self.text is not None:
            return self.text.count("\n") + (bool(self.text) and not self.text.endswith("\n"))
        return self.lines


def _spec(patterns: Iterable[str]) -> pathspec.PathSpec:
    return pathspec.PathSpec.from_lines("gitwildmatch", patterns)


def _test_glob(template: str, path: str) -> str:
    module = Path(path)
    return template.format(stem=module.stem, name=module.name, parent=module.parent.as_posix())


def check(policy: Policy, changes: list[Change], existing: list[str], message: str | None = None) -> list[Violation]:
    """Every violation of ``policy`` in ``changes`` (``existing``: the workspace's files, for required tests) and in
    the commit ``message`` if one is given."""
    found: list[Violation] = []

    def add(kind: RuleKind, rule: str, text: str, file: str | None, line: int | None, source: str) -> None:
        found.append(
            Violation(
                rule=rule, kind=kind, file=file, line=line, message=text, level=policy.level(kind, rule), source=source
            )
        )

    for forbidden in policy.forbidden_paths:
        spec = _spec([forbidden])
        for change in changes:
            if spec.match_file(change.path):
                add(
                    "forbidden_path",
                    forbidden,
                    f"{'deletes' if change.deleted else 'changes'} a forbidden path ({forbidden})",
                    change.path,
                    None,
                    policy.sources.get(forbidden, ""),
                )
    for rule in policy.forbidden_patterns:
        spec = _spec(rule.paths)
        for change in changes:
            if change.deleted or change.path in policy.exempt or not spec.match_file(change.path):
                continue
            for line in _pattern_lines(rule, change):
                add(
                    "forbidden_pattern",
                    rule.id,
                    rule.message or f"matches the forbidden pattern {rule.regex or rule.ast_grep!r}",
                    change.path,
                    line,
                    rule.source,
                )
    if policy.max_file_lines is not None:
        for change in changes:
            count = change.length()
            if change.deleted or count is None or count <= policy.max_file_lines:
                continue
            add(
                "max_file_lines",
                "max_file_lines",
                f"{count} lines, more than the {policy.max_file_lines} allowed",
                change.path,
                policy.max_file_lines + 1,
                policy.sources.get("max_file_lines", ""),
            )
    for required in policy.required_tests:
        modules = _spec([required.modules])
        for change in changes:
            if change.deleted or not modules.match_file(change.path):
                continue
            wanted = _test_glob(required.tests, change.path)
            if not any(_spec([wanted]).match_file(p) for p in existing):
                add(
                    "required_tests",
                    f"{required.modules} -> {required.tests}",
                    f"a changed module with no test: nothing matches {wanted}",
                    change.path,
                    None,
                    required.source,
                )
    if message is not None and policy.commit_message is not None:
        subject = message.strip().splitlines()[0] if message.strip() else ""
        pattern = CONVENTIONAL if policy.commit_message == "conventional" else policy.commit_message
        if re.search(pattern, subject) is None:
            wanted = "Conventional Commits (type(scope): description)" if pattern == CONVENTIONAL else pattern
            add(
                "commit_message",
                "commit_message",
                f"the commit subject {subject[:80]!r} does not follow {wanted}",
                None,
                None,
                policy.sources.get("commit_message", ""),
            )
    return found


def _pattern_lines(rule: PatternRule, change: Change) -> list[int]:
    """The lines of ``change`` (the added ones, when the change says which) where ``rule`` matches."""
    if rule.regex is not None:
        compiled = re.compile(rule.regex)
        if change.added is not None:
            return sorted(n for n, line in change.added.items() if compiled.search(line))
        return [n for n, line in enumerate((change.text or "").splitlines(), 1) if compiled.search(line)]
    language = rule.language or syntax_trees.language_of(Path(change.path))
    if language is None:
        return []
    if change.text is not None:
        source, numbers = change.text, None
    elif change.added:
        # A diff not applied yet: its added lines, in order, are the best text there is to parse.
        numbers = sorted(change.added)
        source = "\n".join(change.added[n] for n in numbers) + "\n"
    else:
        return []
    try:
        matches = SgRoot(source, language).root().find_all(pattern=rule.ast_grep or "")
    except BaseException as exc:  # ast-grep raises Rust panics (BaseException) on bad patterns or languages
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        change.notes.append(f"ast-grep rule {rule.id!r} could not run on {change.path}: {str(exc)[:200]}")
        return []
    lines: set[int] = set()
    for match in matches:
        first, last = match.range().start.line, match.range().end.line
        if numbers is not None:
            lines.add(numbers[first])
        elif change.added is None or any(n in change.added for n in range(first + 1, last + 2)):
            lines.add(first + 1)
    return sorted(lines)
