"""The secret detection every toolset shares: detect-secrets (every plugin, its default filters, ``pragma:
allowlist secret``) over files or the lines a diff adds, in Tandem's worker processes (detect-secrets keeps its
settings in process-wide state), findings masked so that no secret ever leaves in a result.

Files are scanned as ``detect_secrets.core.scan.scan_file`` scans them, with one difference in cost, not in
outcome: detect-secrets hands every line to every plugin (27 of them by default), which is seconds for a codebase.
Here each plugin's own regexes are first searched over the whole file at once, and a line goes only to the
plugins whose regexes match it (a high-entropy plugin: a quoted string over its entropy limit), because those
plugins report nothing on any other line. Plugins Tandem does not know (a baseline's own) get every line.

A file's findings are kept between processes (``tandem.core.result_cache``) under a digest of its name, its bytes,
the settings and detect-secrets' version: a file scanned before, unchanged, is not scanned again (nor is
detect-secrets loaded for it). Settings that load code from a file (a baseline's ``file://`` plugin or filter) are
never cached, since that code may change under the same name.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import io
import itertools
import json
import math
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio

from tandem.core import regex_sets, result_cache, text_files, worker_processes
from tandem.core.errors import ToolError
from tandem.core.workspace_path import open_in_workspace

if TYPE_CHECKING:  # (not imported here: worker processes import this module, and need none of the call context)
    from tandem.core.context import CallContext

BATCH_BYTES = 256 * 1024
"""A worker task's share of the bytes to scan, at most: small enough that every worker process stays busy and
progress moves (one large file can take seconds), large enough that a task's set-up is a small part of it."""
MIN_BATCH_BYTES = 16 * 1024
TASKS_PER_WORKER = 2
IN_PROCESS_BYTES = 4 * 1024 * 1024
"""Up to this much to scan, while no worker process runs yet, the scan runs here: starting the workers would take
longer than the scan (for a one-shot ``tandem pack``, most of its time)."""
_in_process = threading.Lock()
"""detect-secrets' settings are process-wide: one scan in this process at a time."""
SHOWN_LINE = 200
REDACTED = "<redacted>"
Config = dict[str, Any]
"""detect-secrets settings, as a baseline holds them (``plugins_used``, ``filters_used``)."""


def mask(value: str) -> str:
    """What stands in for a secret: its first two characters of a long one (a key's kind), never more."""
    return value[:2] + "*" * 8 if len(value) >= 16 else "*" * 8


def redact(line: str, values: list[str | None]) -> str:
    """``line`` with every occurrence of every secret in ``values`` masked (overlapping ones as one). Wholly
    ``<redacted>`` when a secret is not in the line as written: detect-secrets reads YAML and INI values decoded, so
    the line may hold the secret in an escaped form that no replacement would catch."""
    if any(not value or value not in line for value in values):
        return REDACTED
    found: list[tuple[int, int]] = []
    for value in values:
        at = line.find(value)  # every occurrence, overlapping ones too
        while at >= 0:
            found.append((at, at + len(value)))
            at = line.find(value, at + 1)
    spans: list[list[int]] = []
    for start, end in sorted(found):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    for start, end in reversed(spans):
        line = line[:start] + mask(line[start:end]) + line[end:]
    line = line.strip()
    return line if len(line) <= SHOWN_LINE else line[:SHOWN_LINE] + " [...]"


def _found(secrets: list[Any], lines_of: dict[str, dict[int, str]]) -> list[dict[str, Any]]:
    """detect-secrets' findings as plain data (they cross a process boundary), secrets masked in their lines."""
    by_line: dict[tuple[str, int], list[Any]] = {}
    for secret in secrets:
        by_line.setdefault((secret.filename, secret.line_number), []).append(secret)
    found = []
    for (filename, number), group in sorted(by_line.items()):
        shown = redact(lines_of.get(filename, {}).get(number, ""), [s.secret_value for s in group])
        for secret in group:
            found.append(
                {
                    "path": filename,
                    "line": number,
                    "type": secret.type,
                    "hashed_secret": secret.secret_hash,
                    "redacted": shown,
                }
            )
    return found


@contextlib.contextmanager
def configured(config: Config | None, source: str) -> Iterator[None]:
    """detect-secrets configured with every plugin and its default filters, or with a baseline's settings; a tool
    error naming the baseline when they cannot be applied (a filter whose optional package is not installed)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class as plugin_classes
    from detect_secrets.settings import default_settings, get_filters, get_plugins, transient_settings

    stack = contextlib.ExitStack()
    # detect-secrets caches the plugin classes it knows once per process, a baseline's file:// ones included: a
    # table built under other settings must not serve these, nor this one outlive them (and reach the defaults).
    plugin_classes.cache_clear()
    stack.callback(plugin_classes.cache_clear)
    _sieves.clear()
    stack.callback(_sieves.clear)
    _sets.clear()
    stack.callback(_sets.clear)
    try:
        stack.enter_context(default_settings() if config is None else transient_settings(config))
        get_plugins()
        get_filters()
    except Exception as exc:  # whatever detect-secrets raises while it sets up its plugins and filters
        stack.close()
        raise ToolError(f"{source}: detect-secrets cannot use its plugin and filter settings: {exc!r}") from None
    with stack:
        yield


_MAX_CHOICES = 16
"""The most alternative strings tracked for one piece of a regex when finding what its matches must contain."""


def _exact(op: Any, value: Any) -> set[str] | None:
    """Every string one parsed regex element matches, when they are few (``[ab]``, ``x|yz``, a literal);
    zero-width elements (anchors, lookarounds) match the empty string."""
    from re import _constants as sre

    if op is sre.LITERAL:
        return {chr(value)}
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return {""}
    if op is sre.IN:
        chars: set[str] = set()
        for kind, item in value:
            if kind is sre.LITERAL:
                chars.add(chr(item))
            elif kind is sre.RANGE and item[1] - item[0] < _MAX_CHOICES:
                chars.update(map(chr, range(item[0], item[1] + 1)))
            else:  # a negation, a category (\\d, \\w): too many
                return None
        return chars if len(chars) <= _MAX_CHOICES else None
    if op is sre.SUBPATTERN:
        return _exact_sequence(value[-1])
    if op is sre.BRANCH:
        strings: set[str] = set()
        for branch in value[1]:
            found = _exact_sequence(branch)
            if found is None:
                return None
            strings |= found
        return strings if len(strings) <= _MAX_CHOICES else None
    return None


def _exact_sequence(items: Any) -> set[str] | None:
    strings = {""}
    for op, value in items:
        found = _exact(op, value)
        if found is None or len(strings) * len(found) > _MAX_CHOICES:
            return None
        strings = {a + b for a in strings for b in found}
    return strings


def _requirements(items: Any) -> list[set[str]]:
    """Sets of strings such that every match of the parsed regex ``items`` contains one string of each set: its
    runs of exact pieces and what its other pieces require (none with the empty string, which says nothing)."""
    from re import _constants as sre

    options: list[set[str]] = []
    run = {""}
    for op, value in items:
        found = _exact(op, value)
        if found is not None and len(run) * len(found) <= _MAX_CHOICES:
            run = {a + b for a in run for b in found}
            continue
        options.append(run)
        run = set(found) if found is not None else {""}
        if found is not None:
            continue
        if op is sre.SUBPATTERN:
            inner = _required(value[-1])
        elif op is sre.ATOMIC_GROUP:
            inner = _required(value)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and value[0] >= 1:
            inner = _required(value[2])
        elif op is sre.BRANCH:
            parts = [_required(branch) for branch in value[1]]
            inner = None if any(part is None for part in parts) else set().union(*parts)  # type: ignore[arg-type]
        else:
            inner = None
        if inner is not None:
            options.append(inner)
    options.append(run)
    return [option for option in options if option and "" not in option]


def _required(items: Any) -> set[str] | None:
    """The most telling of ``_requirements(items)`` (its shortest string the longest), or ``None`` if there are
    none to be sure of."""
    return max(_requirements(items), key=_telling, default=None)


def _telling(option: set[str] | frozenset[str]) -> tuple[int, int]:
    return min(map(len, option)), -len(option)


class _Literals(NamedTuple):
    """What every match of a regex contains: one string of ``first`` (looked for in the whole file) and one of
    each of ``rest`` (then checked on the lines found); compared in lower case under ``ignore_case``."""

    first: frozenset[str]
    rest: tuple[frozenset[str], ...]
    ignore_case: bool


@functools.cache
def _parsed(pattern: re.Pattern[str]) -> Any | None:
    """``pattern``'s parse tree (the ``re`` module's own), which the sieve reads; ``None`` if it cannot be parsed
    again."""
    from re import _parser

    try:
        return _parser.parse(pattern.pattern, pattern.flags)
    except re.error:
        return None


@functools.cache
def _literals(pattern: re.Pattern[str]) -> _Literals | None:
    """What every match of ``pattern`` contains; ``None`` when nothing is known (then every line is searched).
    Under ``IGNORECASE`` only ASCII letters are compared lowered (lines with other characters are always
    searched), so a literal keeps its longest ASCII stretch."""
    from re import _constants as sre

    parsed = _parsed(pattern)
    if parsed is None:
        return None
    ignore_case = bool(parsed.state.flags & re.IGNORECASE) or _adds_ignorecase(parsed.data, sre)
    options: set[frozenset[str]] = set()
    for found in _requirements(parsed.data):
        if ignore_case:
            found = {max(re.split(r"[^\x00-\x7f]", text), key=len).lower() for text in found}
            if "" in found:
                continue
        # A text holding "key'" holds "key": only the shortest forms need looking for.
        options.add(frozenset(text for text in found if not any(other != text and other in text for other in found)))
    if not options:
        return None
    first = max(options, key=_telling)
    return _Literals(first, tuple(sorted(options - {first}, key=sorted)), ignore_case)


@functools.cache
def _line_local(pattern: re.Pattern[str]) -> bool:
    """Whether searching a file's lines joined by newlines finds a match on every line that searching each line
    alone finds one on: no piece of ``pattern`` can match a newline (so no match spans two lines), and it has no
    ``^``, ``$``, ``\\A`` or ``\\Z`` (its word boundaries and lookarounds see a neighbouring line's newline as they
    would see the line's end: something that is not a word character and that none of its pieces can match)."""
    from re import _constants as sre

    parsed = _parsed(pattern)
    return parsed is not None and _never_newline(parsed.data, bool(parsed.state.flags & re.DOTALL), sre)


@functools.cache
def _searched_whole(pattern: re.Pattern[str]) -> bool:
    """Whether ``pattern`` is quicker searched over the whole file than through its literals line by line: it is
    line-local, and the regex engine can skip ahead to where a match may start (a case-sensitive pattern whose
    first character is rare in code, not a lower-case letter, digit or space, or that starts with three or more
    fixed characters). Both ways find the same lines; this only picks the cheaper (measured on Tandem's own
    repository, bench/pack.py)."""
    from re import _constants as sre

    if pattern.flags & re.IGNORECASE or not _line_local(pattern):
        return False
    items = _parsed(pattern).data  # it parsed: it is line-local
    firsts = _first_characters(items, sre)
    if firsts and not any(char.islower() or char.isdigit() or char.isspace() for char in firsts):
        return True
    prefix = 0
    for op, _value in items:
        if op is not sre.LITERAL:
            break
        prefix += 1
    return prefix >= 3


def _first_characters(items: Any, sre: Any) -> set[str] | None:
    """The characters a match of the parsed regex ``items`` can start with, when they are few; ``None`` if not."""
    if not items:
        return None
    op, value = items[0]
    if op is sre.LITERAL:
        return {chr(value)}
    if op is sre.IN:
        return _exact(op, value)
    if op is sre.SUBPATTERN:
        return _first_characters(value[-1], sre)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and value[0] >= 1:
        return _first_characters(value[2], sre)
    if op is sre.BRANCH:
        found: set[str] = set()
        for branch in value[1]:
            first = _first_characters(branch, sre)
            if first is None:
                return None
            found |= first
        return found
    return None


_NEWLINE_CATEGORIES = ("CATEGORY_SPACE", "CATEGORY_NOT_DIGIT", "CATEGORY_NOT_WORD", "CATEGORY_LINEBREAK")
_OTHER_CATEGORIES = ("CATEGORY_DIGIT", "CATEGORY_WORD", "CATEGORY_NOT_SPACE", "CATEGORY_NOT_LINEBREAK")


def _class_matches_newline(items: Any, sre: Any) -> bool | None:
    """Whether a character class (``[...]``, ``\\s``) matches a newline; ``None`` if it cannot tell."""
    negate, found = False, False
    for kind, item in items:
        if kind is sre.NEGATE:
            negate = True
        elif kind is sre.LITERAL:
            found |= item == 10
        elif kind is sre.RANGE:
            found |= item[0] <= 10 <= item[1]
        elif kind is sre.CATEGORY:
            name = str(item).removeprefix("CATEGORY_UNI_").removeprefix("CATEGORY_")
            if f"CATEGORY_{name}" in _NEWLINE_CATEGORIES:
                found = True
            elif f"CATEGORY_{name}" not in _OTHER_CATEGORIES:
                return None
        else:
            return None
    return found != negate


def _never_newline(items: Any, dotall: bool, sre: Any) -> bool:
    """Whether no piece of the parsed regex ``items`` matches a newline, nor is an anchor other than a word
    boundary (see ``_line_local``)."""
    for op, value in items:
        if op is sre.LITERAL:
            ok = value != 10
        elif op is sre.NOT_LITERAL:
            ok = value == 10
        elif op is sre.ANY:
            ok = not dotall
        elif op is sre.IN:
            ok = _class_matches_newline(value, sre) is False
        elif op is sre.AT:
            ok = value in (sre.AT_BOUNDARY, sre.AT_NON_BOUNDARY)
        elif op is sre.SUBPATTERN:
            _group, add, remove, body = value
            ok = _never_newline(body, (dotall or bool(add & re.DOTALL)) and not remove & re.DOTALL, sre)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            ok = _never_newline(value[2], dotall, sre)
        elif op is sre.ATOMIC_GROUP:
            ok = _never_newline(value, dotall, sre)
        elif op is sre.BRANCH:
            ok = all(_never_newline(branch, dotall, sre) for branch in value[1])
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            ok = _never_newline(value[1], dotall, sre)
        elif op is sre.GROUPREF:
            ok = True  # it matches what its group matched, and the group is checked where it stands
        elif op is sre.GROUPREF_EXISTS:
            _group, yes, no = value
            ok = _never_newline(yes, dotall, sre) and (no is None or _never_newline(no, dotall, sre))
        else:
            ok = False
        if not ok:
            return False
    return True


def _adds_ignorecase(items: Any, sre: Any) -> bool:
    """Whether an inline group (``(?i:...)``) turns on IGNORECASE anywhere in the parsed regex: in groups,
    alternatives, repeats, atomic groups, lookarounds and conditionals alike."""
    for op, value in items:
        if op is sre.SUBPATTERN:
            inner = [value[-1]]
            if value[1] & re.IGNORECASE:
                return True
        elif op is sre.BRANCH:
            inner = list(value[1])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            inner = [value[2]]
        elif op is sre.ATOMIC_GROUP:
            inner = [value]
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            inner = [value[1]]
        elif op is sre.GROUPREF_EXISTS:
            inner = [part for part in value[1:] if part is not None]
        else:
            continue
        if any(_adds_ignorecase(part, sre) for part in inner):
            return True
    return False


@dataclass(frozen=True, slots=True)
class _Sieve:
    """Which lines one plugin can report on: those its ``patterns`` match. ``patterns`` is ``None`` for a plugin
    whose workings Tandem does not know (every line goes to it); ``entropy`` marks a high-entropy plugin, whose
    quoted strings count only over its entropy limit."""

    plugin: Any
    patterns: tuple[re.Pattern[str], ...] | None
    entropy: bool = False


_sieves: dict[tuple[int, Any], tuple[list[Any], list[_Sieve]]] = {}
"""The plugins' sieves for each file type under the detect-secrets settings in force (``configured`` empties it
whenever they change), by the id of detect-secrets' list of plugins, which each entry holds: settings entered
without ``configured`` (detect-secrets' own ``default_settings``) make a new list, and a freed list's id may be
taken by the next one, so an entry serves only the very list it was made for."""


_sets: dict[int, tuple[list[Any], Any, dict[re.Pattern[str], int]]] = {}
"""The regex set (``tandem.core.regex_sets``) of every pattern the plugins' sieves search with, whatever the file
type, by the id of detect-secrets' list of plugins (held, as in ``_sieves``); with each pattern's index in it."""


def _regex_set() -> tuple[Any, dict[re.Pattern[str], int]]:
    """The regex set of the plugins in force (``None`` without Hyperscan), and each pattern's index in it."""
    from detect_secrets.plugins.keyword import KeywordDetector
    from detect_secrets.settings import get_plugins
    from detect_secrets.util.filetype import FileType

    plugins = get_plugins()
    entry = _sets.get(id(plugins))
    if entry is None or entry[0] is not plugins:
        patterns: dict[re.Pattern[str], int] = {}
        for plugin in plugins:
            # Only the keyword detector's regexes depend on the file's type (see _sieve).
            for file_type in FileType if type(plugin) is KeywordDetector else (FileType.OTHER,):
                sieve = _sieve(plugin, file_type)
                for pattern in sieve.patterns or () if not sieve.entropy else ():
                    patterns.setdefault(pattern, len(patterns))
        entry = _sets[id(plugins)] = (plugins, regex_sets.regex_set(tuple(patterns)), patterns)
    return entry[1], entry[2]


def _sieves_for(filename: str) -> list[_Sieve]:
    from detect_secrets.settings import get_plugins
    from detect_secrets.util.filetype import determine_file_type

    plugins = get_plugins()
    file_type = determine_file_type(filename)
    entry = _sieves.get((id(plugins), file_type))
    if entry is None or entry[0] is not plugins:
        entry = _sieves[id(plugins), file_type] = (plugins, [_sieve(plugin, file_type) for plugin in plugins])
    return entry[1]


def _sieve(plugin: Any, file_type: Any) -> _Sieve:
    """What ``plugin.analyze_line`` searches the lines of a file of ``file_type`` (detect-secrets' ``FileType``)
    with, read from detect-secrets' own classes."""
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import HexHighEntropyString, HighEntropyStringsPlugin
    from detect_secrets.plugins.jwt import JwtTokenDetector

    kind = type(plugin)
    # JwtTokenDetector's analyze_string filters what the base one finds.
    plain = kind.analyze_string is RegexBasedDetector.analyze_string or kind is JwtTokenDetector
    if isinstance(plugin, RegexBasedDetector) and kind.analyze_line is BasePlugin.analyze_line and plain:
        return _Sieve(plugin, tuple(plugin.denylist))
    # HexHighEntropyString's entropy only lowers the base figure (for strings of digits).
    entropy = (HighEntropyStringsPlugin.calculate_shannon_entropy, HexHighEntropyString.calculate_shannon_entropy)
    if (
        isinstance(plugin, HighEntropyStringsPlugin)
        and kind.analyze_line is HighEntropyStringsPlugin.analyze_line
        and kind.analyze_string is HighEntropyStringsPlugin.analyze_string
        and kind.calculate_shannon_entropy in entropy
        and not any(char in plugin.charset for char in "\r\n")
    ):
        return _Sieve(plugin, (plugin.regex,), entropy=True)
    if kind is keyword.KeywordDetector:
        # The regexes its analyze_line picks for this file's type; keyword_exclude only ever removes findings.
        chosen = keyword.REGEX_BY_FILETYPE.get(file_type, keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)
        return _Sieve(plugin, tuple(chosen))
    return _Sieve(plugin, None)


_ROUNDING = 1e-9
"""More than the rounding error of a computed entropy: the entropy of n distinct characters can come out a hair
over log2(n), and so over a limit of exactly log2(n)."""


def _over_limit(plugin: Any, value: str) -> bool:
    """Whether a high-entropy plugin keeps ``value``; a string of n distinct characters has at most log2(n) bits
    each (so one of n characters too), which rules most strings out before the plugin's own sum over its charset."""
    limit = plugin.entropy_limit - _ROUNDING
    return (
        math.log2(max(len(value), 1)) > limit
        and math.log2(max(len(set(value)), 1)) > limit
        and plugin.calculate_shannon_entropy(value) > plugin.entropy_limit
    )


@dataclass(eq=False)
class _Text:
    """One file's lines as the plugins see them (stripped), joined by newlines for searching all at once."""

    lines: list[str]
    joined: str
    ascii: bool
    found: dict[tuple[frozenset[str], bool], set[int]] = field(default_factory=dict)
    """``containing``'s lines by literals: a plugin's regexes (the keyword detector's five) often share them."""
    held: dict[_Literals, set[int]] = field(default_factory=dict)
    """``holding``'s lines by literals."""
    regexes: Any = None
    """The regex set of the plugins' patterns (``None`` without one), and each pattern's index in it."""
    indices: dict[re.Pattern[str], int] = field(default_factory=dict)

    @classmethod
    def of(cls, lines: list[str], regexes: Any = None, indices: dict[re.Pattern[str], int] | None = None) -> _Text:
        stripped = [line.rstrip() for line in lines]
        joined = "\n".join(stripped)
        return cls(stripped, joined, joined.isascii(), regexes=regexes, indices=indices or {})

    @functools.cached_property
    def starts(self) -> list[int]:
        """Where each line starts in ``joined``."""
        return list(itertools.accumulate((len(line) + 1 for line in self.lines[:-1]), initial=0))

    @functools.cached_property
    def lowered(self) -> str | None:
        """``joined`` in lower case when it is all ASCII (lowering then keeps every offset)."""
        return self.joined.lower() if self.ascii else None

    @functools.cached_property
    def _possible(self) -> set[int]:
        return self.regexes.possible(self.joined.encode("utf-8", "surrogatepass"))

    def ruled_out(self, pattern: re.Pattern[str]) -> bool:
        """Whether the regex set shows that ``pattern`` matches no line of this text that is all ASCII (the
        others: ``non_ascii``)."""
        index = self.indices.get(pattern)
        return self.regexes is not None and index is not None and self.one_per_line and index not in self._possible

    @functools.cached_property
    def one_per_line(self) -> bool:
        """Whether ``joined`` holds each line as one (no line holds a newline of its own: a transformer's could)."""
        return self.joined.count("\n") == len(self.lines) - 1

    @functools.cached_property
    def non_ascii(self) -> list[int]:
        """The numbers of the lines that are not all ASCII."""
        if self.ascii:
            return []
        return [number for number, line in enumerate(self.lines, start=1) if not line.isascii()]

    @functools.cached_property
    def lowered_lines(self) -> list[str | None]:
        """Each line in lower case, ``None`` for one that is not all ASCII."""
        return [line.lower() if line.isascii() else None for line in self.lines]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def containing(self, literals: frozenset[str], ignore_case: bool) -> set[int]:
        """The line numbers of lines that hold one of ``literals`` (and, under ``ignore_case``, lines that are
        not all ASCII)."""
        known = self.found.get((literals, ignore_case))
        if known is None:
            known = self.found[literals, ignore_case] = set(self._containing(literals, ignore_case))
        return known

    def holding(self, literals: _Literals) -> set[int]:
        """The line numbers of lines that hold one string of each of ``literals``' sets (and, under its
        ``ignore_case``, lines that are not all ASCII)."""
        known = self.held.get(literals)
        if known is None:
            chosen = self.containing(literals.first, literals.ignore_case)
            if literals.rest:
                lines = self.lowered_lines if literals.ignore_case else self.lines
                chosen = {
                    number
                    for number in chosen
                    if (line := lines[number - 1]) is None
                    or all(any(text in line for text in rest) for rest in literals.rest)
                }
            known = self.held[literals] = chosen
        return known

    def _containing(self, literals: frozenset[str], ignore_case: bool) -> Iterator[int]:
        if ignore_case and not self.ascii:
            for number, line in enumerate(self.lowered_lines, start=1):
                if line is None or any(literal in line for literal in literals):
                    yield number
            return
        text = self.lowered if ignore_case and self.lowered is not None else self.joined
        for literal in literals:
            at = text.find(literal)
            while at >= 0:
                number = self.line_of(at)
                yield number
                # The rest of this line is already chosen: go on from the next one.
                at = text.find(literal, self.starts[number]) if number < len(self.starts) else -1


def _entropy_lines(plugin: Any, pattern: re.Pattern[str], text: _Text) -> set[int]:
    """The lines on which a high-entropy plugin's ``pattern`` (its quoted strings) finds one over its limit, as
    its analyze_line checks each. A quoted string never spans lines (its characters exclude newlines), so the
    file's matches are the lines' matches. Only a string long enough can be over the limit: the lines holding a
    quoted string that long are found first (a line with a string over the limit holds one: the search for long
    ones can only pass it over by taking another long one on the same line), then only those are checked."""
    long = _long_enough(pattern, plugin.charset, plugin.entropy_limit)
    if long is None:
        return {text.line_of(match.start()) for match in pattern.finditer(text.joined) if _over_limit(plugin, match[2])}
    chosen: set[int] = set()
    for found in long.finditer(text.joined):
        number = text.line_of(found.start())
        if number not in chosen and any(
            _over_limit(plugin, match[2]) for match in pattern.finditer(text.lines[number - 1])
        ):
            chosen.add(number)
    return chosen


@functools.cache
def _long_enough(pattern: re.Pattern[str], charset: str, limit: float) -> re.Pattern[str] | None:
    """``pattern`` matching only strings long enough to be over ``limit`` (``_over_limit``: log2 of the length over
    it), when it is the quoted-string regex detect-secrets builds from ``charset``; ``None`` otherwise."""
    quoted = "([\\'\"])([" + re.escape(charset)
    if pattern.pattern != quoted + "]+)(\\1)" or pattern.flags != re.UNICODE:
        return None
    shortest = max(int(2**limit) - 1, 1)
    while math.log2(shortest) <= limit - _ROUNDING:
        shortest += 1
    return re.compile(quoted + "]{" + str(shortest) + ",})(\\1)")


def _lines_for(sieve: _Sieve, text: _Text) -> set[int]:
    """The line numbers (1-based) ``sieve``'s plugin can report on."""
    every = range(1, len(text.lines) + 1)
    if sieve.patterns is None:
        return set(every)
    chosen: set[int] = set()
    for pattern in sieve.patterns:
        if sieve.entropy:
            chosen |= _entropy_lines(sieve.plugin, pattern, text)
            continue
        if text.ruled_out(pattern):
            chosen.update(number for number in text.non_ascii if pattern.search(text.lines[number - 1]))
            continue
        if _searched_whole(pattern):
            # No match spans lines: a match found in the whole text is on its line, and the search goes on
            # from the next line.
            at = pattern.search(text.joined)
            while at is not None and (number := text.line_of(at.start())) <= len(text.lines):
                chosen.add(number)
                at = pattern.search(text.joined, text.starts[number]) if number < len(text.starts) else None
            continue
        literals = _literals(pattern)
        candidates = every if literals is None else text.holding(literals)
        chosen.update(
            number for number in candidates if number not in chosen and pattern.search(text.lines[number - 1])
        )
    return chosen


def _scan_lines(lines: list[str], filename: str) -> Iterator[Any]:
    """detect-secrets' ``_process_line_based_plugins`` over ``lines``, each line handed only to the plugins that
    can report on it: the same findings, in the same order."""
    from detect_secrets.core.scan import _is_filtered_out, _scan_line
    from detect_secrets.util.code_snippet import get_code_snippet

    text = _Text.of(lines, *_regex_set())
    wanted: dict[int, list[Any]] = {}
    for sieve in _sieves_for(filename):
        for number in _lines_for(sieve, text):
            wanted.setdefault(number, []).append(sieve.plugin)
    for number in sorted(wanted):
        line = text.lines[number - 1]
        context = get_code_snippet(lines=lines, line_number=number)
        if _is_filtered_out(required_filter_parameters=["line"], filename=filename, line=line, context=context):
            continue
        for plugin in wanted[number]:
            for secret in _scan_line(plugin=plugin, filename=filename, line=line, line_number=number, context=context):
                if not _is_filtered_out(
                    required_filter_parameters=["context"],
                    filename=secret.filename,
                    secret=secret.secret_value,
                    plugin=plugin,
                    line=line,
                    context=context,
                ):
                    yield secret


_ASKS_THE_DISK = "detect_secrets.filters.common.is_invalid_file"
"""The filename filter that looks for the file on disk: not asked about bytes already held (a file deleted and
written again while it is scanned would be passed over, and its bytes taken for clean)."""


_GUESSES_BY_NAME = "detect_secrets.filters.heuristic."
"""detect-secrets' filename filters that guess a file is not worth scanning (lock files, swagger files, extensions
such as .css, .svg, .lock it takes for non-text): not asked when every text file must be scanned."""


def _passed_over(filename: str, held: bool, every_text: bool = False) -> bool:
    """Whether detect-secrets' filename filters (a baseline's exclusions, lock files, non-text extensions) pass
    over ``filename``: its ``_is_filtered_out(["filename"])``, without the disk check for bytes ``held``, and
    with ``every_text`` without its guesses by name (the text is going to a model: it is scanned whatever its
    name)."""
    from detect_secrets.core.scan import get_filters_with_parameter
    from detect_secrets.util.inject import call_function_with_arguments

    for check in get_filters_with_parameter("filename"):
        path = getattr(check, "path", "")
        if (held and path == _ASKS_THE_DISK) or (every_text and path.startswith(_GUESSES_BY_NAME)):
            continue
        try:
            if call_function_with_arguments(check, filename=filename):
                return True
        except TypeError:  # a filter that wants more than the filename, as detect-secrets skips it
            continue
    return False


class _Held(io.StringIO):
    """A file's text as detect-secrets' transformers read a file it opened itself: by ``name``, from the start."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name


_NOT_INI = re.compile(r"^[^\s#;\[=:][^\n=:]*$", re.MULTILINE)
"""A line configparser rejects whatever surrounds it: not indented (so never a value's continuation), not a comment,
not a section header, and without ``=`` or ``:`` (so not an option). Before any section header it is a missing
header; after one, a parsing error. Either way detect-secrets' INI transformers give up on the file."""


def _transformed(held: _Held, eager: bool) -> list[str] | None:
    """``detect_secrets.transformers.get_transformed_file(held, eager)``, the same transformers in the same order,
    except that the INI transformers are not run over a text holding a line configparser rejects (``_NOT_INI``):
    they would parse all of it (a Markdown file, twice) only to fail."""
    from detect_secrets.transformers import get_transformers
    from detect_secrets.transformers.config import ConfigFileTransformer, EagerConfigFileTransformer
    from detect_secrets.transformers.exceptions import ParsingError

    not_ini: bool | None = None
    for transformer in get_transformers():
        if not transformer.should_parse_file(held.name) or eager != transformer.is_eager:
            continue
        if type(transformer) in (ConfigFileTransformer, EagerConfigFileTransformer):
            if not_ini is None:
                not_ini = _NOT_INI.search(held.getvalue()) is not None
            if not_ini:
                continue
        try:
            return transformer.parse_file(held)
        except ParsingError:
            pass
        finally:
            held.seek(0)
    return None


def scanned_text(data: bytes) -> str:
    """A file's bytes as the scan reads them: as ``open(name)`` hands them to detect-secrets (UTF-8, universal
    newlines). A file that is not UTF-8, which detect-secrets would pass over, is read as Tandem decodes it (its
    text is what a pack or a brief would send)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text, _encoding = text_files.decode(data)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def scan_file(filename: str, data: bytes | None = None, every_text: bool = False) -> Iterator[Any]:
    """``detect_secrets.core.scan.scan_file`` over ``data`` (the file's bytes, read here when not given), line by
    line through ``_scan_lines``: the file as read (or as its type's transformer reads it), then, if that holds no
    secret, as the eager transformers read it. The bytes are read once: what is scanned is exactly ``data``.
    ``every_text``: also a file detect-secrets would pass over for its name (see ``_passed_over``)."""
    from detect_secrets.settings import get_plugins

    if not get_plugins() or _passed_over(filename, held=data is not None, every_text=every_text):
        return
    if data is None:
        try:
            with open(filename, "rb") as handle:
                data = handle.read()
        except OSError:
            return
    held = _Held(scanned_text(data), filename)

    def readings() -> Iterator[list[str]]:
        """detect-secrets' ``_get_lines_from_file``, on the text held instead of the file reopened by name."""
        yield _transformed(held, eager=False) or held.readlines()
        held.seek(0)
        eager = _transformed(held, eager=True)
        if eager:
            yield eager

    for lines in readings():
        found = False
        for secret in _scan_lines(lines, filename):
            found = True
            yield secret
        if found:
            break


_WARM_UP_TEXT = b"password = 'not-a-secret'\nurl: https://user:pass@example.com\n"
_WARM_UP_NAMES = ("warm-up.py", "warm-up.yaml", "warm-up.ini", "warm-up.js", "warm-up.txt")


PREPARED = "tandem.core.secret_scan_prepared"
"""The module whose import runs ``prepare``: what worker processes preload (``worker_processes.preload``)."""


def prepare() -> None:
    """Load detect-secrets and what a first scan compiles (its plugins' and filters' modules, their regexes and
    what Tandem reads from them) by scanning a few lines in this process: a server's warm-up, here and in each
    worker process. (The plugins themselves are made again under each scan's settings.) The sieve's reading of
    every plugin regex (parsed again, its literals, where it can be searched) is done here too, not only for the
    regexes the warm-up lines reach: a worker forked from a prepared fork server would otherwise read each of
    them again on its first scan."""
    from detect_secrets.settings import get_plugins
    from detect_secrets.util.filetype import FileType

    with _in_process, configured(None, "detect-secrets' defaults"):
        for name in _WARM_UP_NAMES:
            for _secret in scan_file(name, _WARM_UP_TEXT, every_text=True):
                pass
        for pattern in _regex_set()[1]:
            _literals(pattern)
            _searched_whole(pattern)
        for plugin in get_plugins():
            sieve = _sieve(plugin, FileType.OTHER)
            for pattern in sieve.patterns or () if sieve.entropy else ():
                _long_enough(pattern, plugin.charset, plugin.entropy_limit)


TEXT_AS = "text.conf"
"""The file name free text is scanned under: a config file's rules, so ``key=value`` counts unquoted as well as
quoted (a diff, a log or an env dump pasted as text has no file type of its own)."""


def secret_lines_in_text(lines: list[str]) -> dict[int, list[str]]:
    """The line numbers (1-based) of ``lines`` that hold a secret by detect-secrets' defaults, each with the kinds
    found. Runs in this process (call it in a thread), one scan at a time."""
    found: dict[int, list[str]] = {}
    with _in_process, configured(None, "detect-secrets' defaults"):
        for secret in _scan_lines(lines, TEXT_AS):
            kinds = found.setdefault(secret.line_number, [])
            if secret.type not in kinds:
                kinds.append(secret.type)
    return found


SCAN_VERSION = 2
"""Part of every cached finding's key: raised when a change to this module could change what a scan finds or
what it keeps."""
_FILTERS_READING_FILES = ("detect_secrets.filters.wordlist.", "detect_secrets.filters.gibberish.")
"""Filters whose verdicts depend on a file the settings name (a word list, a model), not on the settings alone."""


def _identity(config: Config | None, every_text: bool = False) -> bytes | None:
    """What a file's findings depend on besides its name and bytes; ``None`` when they cannot be cached."""
    if config is not None:
        listed = [*config.get("plugins_used", []), *config.get("filters_used", [])]
        paths = [str(entry.get("path", "")) for entry in listed if isinstance(entry, dict)]
        if any(path.startswith(("file://", *_FILTERS_READING_FILES)) for path in paths):
            return None
    settings = json.dumps(config, sort_keys=True, default=str) if config is not None else "defaults"
    scope = "every-text-file" if every_text else "as-detect-secrets"
    return f"tandem-scan-{SCAN_VERSION}|detect-secrets-{_detect_secrets_version()}|{scope}|{settings}".encode()


@functools.cache
def _detect_secrets_version() -> str:
    from importlib.metadata import version

    return version("detect-secrets")  # read from its metadata on disk: once a process


def content_digest(data: bytes) -> bytes:
    """The digest a file's bytes are known by: what the cache keys on, and what a caller holding the bytes passes
    to ``scan_files`` to have the findings be of exactly those bytes."""
    return hashlib.sha256(data).digest()  # the digest text_files.FileText.sha256 holds in hex


def _key(identity: bytes, name: str, digest: bytes) -> bytes:
    # No part holds a NUL (paths cannot; the identity is JSON; the digest is fixed-length and last).
    return hashlib.blake2b(
        b"\0".join([identity, name.encode("utf-8", "surrogateescape"), digest]), digest_size=16
    ).digest()


_KIND = "secrets"


class Scan(NamedTuple):
    """What a scan found: the findings (by path, then line), each file not scanned and why (``"name: why"``), how
    many were scanned, and the content digest of each one scanned (its findings are of those bytes)."""

    found: list[dict[str, Any]]
    skipped: list[str]
    count: int
    digests: dict[str, bytes]

    def unscanned(self, files: list[str]) -> dict[str, str]:
        """Those of ``files`` the scan does not vouch for (no finding, no digest), each with why."""
        held = {entry["path"] for entry in self.found}
        left = {name for name in files if name not in self.digests and name not in held}
        why: dict[str, str] = {}
        for entry in self.skipped:  # "name: why", and a name may hold ": " itself
            at = entry.find(": ")
            while at >= 0 and entry[:at] not in left:
                at = entry.find(": ", at + 1)
            if at >= 0:
                why.setdefault(entry[:at], entry[at + 2 :])
        return {name: why.get(name, "not read") for name in files if name in left}


def _read_for_scan(root: Path, name: str, max_bytes: int) -> bytes | str:
    """A listed file's bytes, or why it is not scanned ('binary', too large, unreadable)."""
    try:
        with os.fdopen(open_in_workspace(root, root / name), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                return f"{size} bytes, over the {max_bytes}-byte limit (max_file_bytes)"
            data = handle.read(max_bytes + 1)
    except (OSError, ToolError) as exc:
        return f"not read: {exc}"
    if len(data) > max_bytes:
        return f"over the {max_bytes}-byte limit (max_file_bytes)"
    return "binary" if b"\x00" in data[: text_files.SNIFF_BYTES] else data


CHANGED = "changed after it was read"


def scan_file_batch(
    workspace: str, max_bytes: int, config: Config | None, source: str, files: list[str], every_text: bool = False
) -> Scan:
    """Scan ``files`` (relative to ``workspace``, which becomes the working directory so that filenames and
    exclusion patterns read as in a baseline). Each file is read once and its bytes scanned; its findings are kept
    in the result cache by kind, line and masked line (never a secret or the hash of one). Runs in a worker
    process."""
    root = Path(workspace)
    readable: dict[str, bytes] = {}
    skipped = []
    for name in files:
        got = _read_for_scan(root, name, max_bytes)
        if isinstance(got, bytes):
            readable[name] = got
        elif got != "binary":
            skipped.append(f"{name}: {got}")
    previous = os.getcwd()
    os.chdir(workspace)
    try:
        with configured(config, source):
            secrets = [secret for name, data in readable.items() for secret in scan_file(name, data, every_text)]
    finally:
        os.chdir(previous)
    # Numbered as detect-secrets numbers them: at newlines only (splitlines would also split at form feeds and the
    # like, and show a line other than the finding's, its secrets unmasked).
    lines_of = {
        name: dict(enumerate(scanned_text(readable[name]).split("\n"), start=1))
        for name in {s.filename for s in secrets}
    }
    found = _found(secrets, lines_of)
    digests = {name: content_digest(data) for name, data in readable.items()}
    identity = _identity(config, every_text)
    if identity is not None:
        by_file: dict[str, list[dict[str, Any]]] = {name: [] for name in digests}
        for entry in found:
            by_file[entry["path"]].append({key: entry[key] for key in _KEPT})
        result_cache.shared().put_later(
            _KIND, {_key(identity, name, digest): json.dumps(by_file[name]) for name, digest in digests.items()}
        )
    return Scan(found, skipped, len(readable), digests)


_KEPT = ("line", "type", "redacted")
"""What the result cache keeps of a finding: not ``hashed_secret`` (an unsalted SHA-1 of the secret, which a weak
password does not survive); a caller that needs it has files with findings scanned again."""


def _digests_of(workspace: str, max_bytes: int, files: list[str]) -> dict[str, bytes]:
    """The content digest of each of ``files`` that would be scanned (readable, not binary, not too large)."""
    root = Path(workspace)
    return {
        name: content_digest(got) for name in files if isinstance(got := _read_for_scan(root, name, max_bytes), bytes)
    }


def _already_scanned(identity: bytes, digests: dict[str, bytes], hashes: bool = True) -> dict[str, list[Any]]:
    """The findings the result cache holds for the files whose bytes (by digest) were scanned before (with
    ``hashed_secret`` unknown, ``None``); with ``hashes``, only the files found clean (the others must be scanned
    again for the hashes)."""
    keys = {_key(identity, name, digest): name for name, digest in digests.items()}
    known: dict[str, list[Any]] = {}
    for key, value in result_cache.shared().get_many(_KIND, keys).items():
        with contextlib.suppress(ValueError, TypeError, KeyError):
            entries = [
                {"path": keys[key], **{k: entry[k] for k in _KEPT}, "hashed_secret": None}
                for entry in json.loads(value)
            ]
            if not (hashes and entries):
                known[keys[key]] = entries
    return known


def scan_diff_text(workspace: str, config: Config | None, source: str, diff: str) -> tuple[list[dict[str, Any]], int]:
    """Scan the lines a unified diff adds, at their line numbers in the new file; and how many files it touches.
    Runs in a worker process."""
    from detect_secrets.core import scan
    from unidiff import PatchSet

    previous = os.getcwd()
    os.chdir(workspace)
    try:
        lines_of: dict[str, dict[int, str]] = {}
        for patched in PatchSet.from_string(diff):
            added = lines_of.setdefault(patched.path, {})
            for hunk in patched:
                for line in hunk.target_lines():
                    if line.is_added and line.target_line_no is not None:
                        added[line.target_line_no] = line.value.rstrip("\n")
        with configured(config, source):
            return _found(list(scan.scan_diff(diff)), lines_of), len(lines_of)
    finally:
        os.chdir(previous)


def _sizes(workspace: str, files: list[str]) -> list[int]:
    """Each file's size (0 for one that cannot be read: its task says why)."""
    sizes = []
    for name in files:
        try:
            sizes.append(os.stat(os.path.join(workspace, name)).st_size)
        except OSError:
            sizes.append(0)
    return sizes


def _small_here(workspace: str, sizes: list[int]) -> bool:
    """Whether files of ``sizes`` can be scanned in this process: little enough of them, and the process already
    working in ``workspace`` (the scan reads names relative to the working directory, and this process's must not
    move)."""
    return sum(sizes) <= IN_PROCESS_BYTES and os.path.realpath(os.getcwd()) == os.path.realpath(workspace)


_COST_PER_BYTE = {".yaml": 20, ".yml": 20, ".md": 3, ".rst": 3, ".txt": 3}
"""What a byte of these files costs to scan against a byte of code, about (measured on Tandem's repository): YAML
is parsed by detect-secrets' YAML transformer (pure Python), prose holds more keyword lines."""


def _batches(files: list[str], sizes: list[int]) -> list[list[str]]:
    """``files`` in worker tasks, in order, each about a share of the bytes still left (a few tasks' worth per
    worker process), so that tasks get smaller towards the end and the workers finish together even when some
    files cost more per byte than others (detect-secrets parses YAML files as well); none over ``BATCH_BYTES`` unless
    one file is, none under ``MIN_BATCH_BYTES`` but the last. Bytes are weighed by ``_COST_PER_BYTE``."""
    shares = worker_processes.worker_count() * TASKS_PER_WORKER
    sizes = [
        size * _COST_PER_BYTE.get(os.path.splitext(name)[1].lower(), 1) for name, size in zip(files, sizes, strict=True)
    ]
    left = sum(sizes)
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    target = min(BATCH_BYTES, max(left // shares, MIN_BATCH_BYTES))
    for name, bytes_ in zip(files, sizes, strict=True):
        current.append(name)
        size += bytes_
        if size >= target:
            batches.append(current)
            left -= size
            current, size = [], 0
            target = min(BATCH_BYTES, max(left // shares, MIN_BATCH_BYTES))
    if current:
        batches.append(current)
    return batches


async def scan_files(
    ctx: CallContext,
    config: Config | None,
    source: str,
    files: list[str],
    digests: dict[str, bytes] | None = None,
    hashes: bool = True,
    every_text: bool = False,
) -> Scan:
    """Scan ``files``. Files scanned before, unchanged, come from the result cache; the others are scanned in
    worker processes (or here, when they are few and no worker runs yet). ``digests`` (name -> ``content_digest``
    of the bytes the caller holds) makes the findings be of exactly those bytes: a file whose bytes on disk are not
    those is reported skipped (as changed), never passed as clean. A caller that does not need each finding's
    ``hashed_secret`` says ``hashes=False`` and takes files with findings from the cache too (their hash
    ``None``). ``every_text`` scans files detect-secrets passes over for their name too (what goes to a model)."""
    workspace, budget = str(ctx.path(".")), ctx.settings.max_file_bytes
    identity = _identity(config, every_text)
    known: dict[str, list[Any]] = {}
    held: dict[str, bytes] = {}
    if identity is not None and files:
        held = digests if digests is not None else await ctx.run_sync(lambda: _digests_of(workspace, budget, files))
        known = await ctx.run_sync(lambda: _already_scanned(identity, held, hashes))
    todo = [name for name in files if name not in known]
    found = [entry for name in files if name in known for entry in known[name]]
    skipped: list[str] = []
    scanned = {name: held[name] for name in known}
    if todo:
        more = await _scan_now(ctx, workspace, budget, config, source, todo, len(known), every_text)
        changed = {name for name, digest in more.digests.items() if digests is not None and digests.get(name) != digest}
        found += [entry for entry in more.found if entry["path"] not in changed]
        skipped = more.skipped + [f"{name}: {CHANGED}" for name in sorted(changed)]
        scanned |= {name: digest for name, digest in more.digests.items() if name not in changed}
    await ctx.report_progress(len(files), len(files), f"{len(found)} secrets")
    found.sort(key=lambda entry: (entry["path"], entry["line"]))
    return Scan(found, skipped, len(scanned), scanned)


async def _scan_now(
    ctx: CallContext,
    workspace: str,
    budget: int,
    config: Config | None,
    source: str,
    files: list[str],
    done: int,
    every_text: bool,
) -> Scan:
    total = done + len(files)
    sizes = await ctx.run_sync(lambda: _sizes(workspace, files))
    if not worker_processes.started() and _small_here(workspace, sizes):

        def scan_here() -> Scan:
            with _in_process:
                return scan_file_batch(workspace, budget, config, source, files, every_text)

        return await ctx.run_sync(scan_here)
    batches = _batches(files, sizes)
    # Submitted from a thread (starting a worker waits for the fork server, which may still be importing), and
    # not abandoned when the call is cancelled meanwhile: the futures are cancelled below.
    futures: list[Future[Scan]] = await anyio.to_thread.run_sync(
        lambda: [
            worker_processes.submit(scan_file_batch, workspace, budget, config, source, batch, every_text)
            for batch in batches
        ]
    )
    outcome = Scan([], [], 0, {})
    try:
        for batch, future in zip(batches, futures, strict=True):
            part = await worker_processes.result(future)
            done += len(batch)
            outcome.found.extend(part.found)
            outcome.skipped.extend(part.skipped)
            outcome.digests.update(part.digests)
            outcome = outcome._replace(count=outcome.count + part.count)
            await ctx.report_progress(done, total, f"{len(outcome.found)} secrets")
    finally:
        for future in futures:
            future.cancel()
    return outcome
