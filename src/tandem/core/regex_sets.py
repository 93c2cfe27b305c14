"""Which of many regexes can match somewhere in a text, found in one pass over it: the secret scan's first sieve.

Python's ``re`` searches a text once per regex; Hyperscan searches for a whole set at once, at the speed of
reading the text. Hyperscan has no lookarounds or backreferences, so each regex is first *relaxed* into one it can
compile whose matches cover the original's on any line of ASCII text:

- every character (a literal, a class, ``.``, ``\\w``) becomes the set of ASCII characters other than the newline
  it matches, asked of Python's own ``re`` with the flags in force there (combined as ``re`` combines them:
  case-insensitivity, a local ``(?a:...)``, ``(?s)``), so that no relaxed match spans lines;
- lookarounds and word boundaries are dropped (a condition less, more matches), as are atomic groups and
  possessive repeats (they become plain ones);
- a backreference becomes what its group can take (read under the group's flags, its anchors dropped since they
  take no text, every letter in both cases if the reference compares without case); a conditional, either branch;
- ``^``, ``$``, ``\\A`` and ``\\Z`` match at every line's start and end, repeats over 1000 have no upper bound.

So when a text's lines are joined by newlines (and hold none themselves), a regex that matches one of them has a
relaxed form that matches the text: where the relaxed form matches nowhere, the text needs no searching for it.
Lines with other than ASCII characters are the caller's to search (there the ASCII sets say nothing). A regex that
cannot be relaxed, or that Hyperscan rejects, is always reported possible.

Databases are compiled once per set of regexes and kept in the user's cache directory (``~/.cache/tandem``),
which a later process loads in a fraction of a millisecond. Without Hyperscan (a platform it has no wheel for),
``regex_set`` returns ``None`` and callers search as before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tandem.core import result_cache

logger = logging.getLogger(__name__)

FORMAT = 1
"""Part of a cached database's name where the module's source cannot be read (see ``_source``): raised when
relaxing or compiling changes."""
MAX_REPEAT = 1000
MAX_FORM = 20_000
"""The longest relaxed form made; a regex whose form would be longer is searched without Hyperscan."""
_ASCII = [chr(code) for code in range(128) if code != 10]
"""What a line of ASCII text can hold: every ASCII character but the newline that ends it."""


class _Unrelaxable(Exception):
    """A regex holds something ``relaxed`` does not know."""


def _sre() -> Any:
    from re import _constants

    return _constants


def _characters(op: Any, value: Any, flags: int) -> frozenset[int]:
    """The ASCII characters the one-character element ``(op, value)`` matches under ``flags``: Python's ``re``
    compiles the element alone and is asked about each."""
    from re import _compiler, _parser

    element = _parser.SubPattern(_parser.State())
    element.state.flags = flags
    element.append((op, value))
    compiled = _compiler.compile(element, flags)
    return frozenset(ord(char) for char in _ASCII if compiled.fullmatch(char))


def _class(codes: frozenset[int]) -> str | None:
    """A Hyperscan class of exactly ``codes`` (ranges written ``\\xNN-\\xNN``); ``None`` for none."""
    if not codes:
        return None
    ordered = sorted(codes)
    runs: list[list[int]] = []
    for code in ordered:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    parts = [f"\\x{a:02x}" if a == b else f"\\x{a:02x}-\\x{b:02x}" for a, b in runs]
    return parts[0] if len(parts) == 1 and runs[0][0] == runs[0][1] else "[" + "".join(parts) + "]"


def relaxed(pattern: re.Pattern[str]) -> str | None:
    """``pattern`` relaxed for Hyperscan (see the module's doc), to compile with its multi-line flag; ``None``
    when it matches no line of ASCII text (a literal ``ñ`` in every branch); raises ``ValueError`` when it cannot
    be relaxed."""
    from re import _parser

    sre = _sre()
    try:
        parsed = _parser.parse(pattern.pattern, pattern.flags)
    except re.error as exc:
        raise ValueError(f"cannot parse {pattern.pattern!r}: {exc}") from None
    groups: dict[int, tuple[Any, int]] = {}
    """Each group's parsed body, with the flags its body is read under."""

    def collect(items: Any, flags: int) -> None:
        for op, value in items:
            if op is sre.SUBPATTERN:
                group, add, remove, body = value
                inner = _combined(flags, add, remove)
                if group is not None:
                    groups[group] = (body, inner)
                collect(body, inner)
            else:
                for part in _parts(op, value, sre):
                    collect(part, flags)

    def emit(items: Any, flags: int, depth: int, taken: bool = False, fold: bool = False) -> str | None:
        """The relaxed form of ``items``; ``None`` when they match no ASCII text at all. ``taken``: what a
        reference to them matches, the text they took (anchors take none); ``fold``: compared with IGNORECASE
        (every character with its ASCII case variants)."""
        if depth > 50:
            raise _Unrelaxable("nested too deeply")
        out: list[str | None] = []
        for op, value in items:
            if op in (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY):
                codes = _characters(op, value, flags)
                out.append(_class(_with_cases(codes) if fold else codes))
            elif op is sre.AT:
                if taken:
                    continue
                if value in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING, sre.AT_BEGINNING_LINE):
                    out.append("^")
                elif value in (sre.AT_END, sre.AT_END_STRING, sre.AT_END_LINE):
                    out.append("$")
                # \b and \B: dropped
            elif op is sre.SUBPATTERN:
                _group, add, remove, body = value
                out.append(_grouped(emit(body, _combined(flags, add, remove), depth + 1, taken, fold)))
            elif op is sre.BRANCH:
                out.append(_either([emit(branch, flags, depth + 1, taken, fold) for branch in value[1]]))
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
                low, high, body = value
                inner = emit(body, flags, depth + 1, taken, fold) if high != 0 else ""
                if not inner:  # nothing (then none of it, if it may), or only what is dropped
                    out.append(None if inner is None and low > 0 else "")
                    continue
                bound = "" if high is sre.MAXREPEAT or high > MAX_REPEAT else str(high)
                out.append(f"(?:{inner}){{{min(low, MAX_REPEAT)},{bound}}}")
            elif op is sre.ATOMIC_GROUP:
                out.append(_grouped(emit(value, flags, depth + 1, taken, fold)))
            elif op in (sre.ASSERT, sre.ASSERT_NOT):
                continue
            elif op is sre.GROUPREF:
                body, inner_flags = groups[value]
                # The text the group took (read under its own flags), compared as the reference compares it.
                inner = emit(body, inner_flags, depth + 1, True, fold or bool(flags & re.IGNORECASE))
                out.append(_grouped(inner))
            elif op is sre.GROUPREF_EXISTS:
                _group, yes, no = value
                other = emit(no, flags, depth + 1, taken, fold) if no is not None else ""
                out.append(_either([emit(yes, flags, depth + 1, taken, fold), other]))
            else:
                raise _Unrelaxable(f"no relaxed form for {op}")
            if None in out:
                return None
        form = "".join(part for part in out if part is not None)
        if len(form) > MAX_FORM:  # nested references double it at each level
            raise _Unrelaxable(f"its relaxed form is over {MAX_FORM} characters")
        return form

    try:
        collect(parsed.data, parsed.state.flags)
        return emit(parsed.data, parsed.state.flags, 0)
    except (_Unrelaxable, KeyError, re.error, RecursionError) as exc:
        raise ValueError(f"cannot relax {pattern.pattern!r}: {exc}") from None


_TYPE_FLAGS = re.ASCII | re.LOCALE | re.UNICODE


def _combined(flags: int, add: int, remove: int) -> int:
    """The flags inside an inline group ``(?add-remove:...)``: as ``re`` combines them, a type flag (``a``, ``L``,
    ``u``) replacing the one outside."""
    if add & _TYPE_FLAGS:
        flags &= ~_TYPE_FLAGS
    return (flags | add) & ~remove


def _with_cases(codes: frozenset[int]) -> frozenset[int]:
    """``codes`` with the other case of every ASCII letter: what IGNORECASE compares equal on ASCII text."""
    return codes | {ord(chr(code).swapcase()) for code in codes if chr(code).isalpha()}


def _grouped(inner: str | None) -> str | None:
    return None if inner is None else f"(?:{inner})"


def _either(branches: list[str | None]) -> str | None:
    """Alternatives, those that match nothing left out."""
    kept = [branch for branch in branches if branch is not None]
    return "(?:" + "|".join(kept) + ")" if kept else None


def _parts(op: Any, value: Any, sre: Any) -> list[Any]:
    """The parsed sub-sequences inside one element (of a branch, repeat, lookaround...)."""
    if op is sre.BRANCH:
        return list(value[1])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return [value[2]]
    if op is sre.ATOMIC_GROUP:
        return [value]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [value[1]]
    if op is sre.GROUPREF_EXISTS:
        return [part for part in value[1:] if part is not None]
    return []


class RegexSet:
    """A Hyperscan database of ``patterns`` relaxed. ``possible(data)``: the indices of those that may match a
    line of ASCII text in ``data`` (UTF-8, lines joined by newlines), every one Hyperscan could not take included,
    those that ``never`` can left out."""

    def __init__(
        self, patterns: Sequence[re.Pattern[str]], database: Any, compiled: dict[int, int], never: frozenset[int]
    ) -> None:
        self.patterns = tuple(patterns)
        self._database = database
        self._ids = compiled
        """Hyperscan expression id -> index in ``patterns``."""
        self.never = never
        """The patterns that match no line of ASCII text."""
        self.always = frozenset(range(len(self.patterns))) - frozenset(compiled.values()) - never
        self._local = threading.local()

    def possible(self, data: bytes) -> set[int]:
        if self._database is None or not data:  # Hyperscan finds nothing in an empty text, not even ""
            return set(range(len(self.patterns))) - self.never
        import hyperscan

        found = set(self.always)
        ids = self._ids

        def matched(expression: int, _start: int, _end: int, _flags: int, _context: Any) -> None:
            found.add(ids[expression])

        try:
            scratch = getattr(self._local, "scratch", None)
            if scratch is None:
                # A scan needs scratch space of its own: one per thread.
                scratch = self._local.scratch = hyperscan.Scratch(self._database)
            # With a newline after the last line: Hyperscan's multi-line ^ never matches after a newline that ends
            # the data, so an empty last line would be out of its reach. The newline only adds matches.
            self._database.scan(data + b"\n", match_event_handler=matched, scratch=scratch)
        except hyperscan.error as exc:
            logger.warning("regex set not searched (every regex is searched instead): %s", exc)
            return set(range(len(self.patterns))) - self.never
        return found


@functools.cache
def _source() -> str:
    """This module's own digest (how patterns are relaxed and compiled), or ``FORMAT`` where its source cannot be
    read: part of a cached database's name, so that a changed module never loads a database made by another."""
    try:
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    except OSError:
        return f"format-{FORMAT}"


def available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


_building = threading.Lock()


@functools.lru_cache(maxsize=32)
def regex_set(patterns: tuple[re.Pattern[str], ...]) -> RegexSet | None:
    """The set of ``patterns`` (made once per process, its database compiled once per machine); ``None`` without
    Hyperscan."""
    if not available():
        return None
    import hyperscan

    version = getattr(hyperscan, "__version__", "?")
    described = [(pattern.pattern, pattern.flags) for pattern in patterns]
    # What the relaxed forms depend on: the patterns, how Python's re reads them, and this module.
    key = hashlib.sha256(repr((_source(), version, sys.version_info[:2], described)).encode()).hexdigest()[:32]
    cached = result_cache.cache_dir() / f"regex-set-{key}.hyperscan"
    with _building, _one_process_at_a_time(cached.with_suffix(".lock")):
        stored = result_cache.read_checked(cached)
        if stored is not None:
            try:
                size = int.from_bytes(stored[:4], "big")
                held = json.loads(stored[4 : 4 + size])
                compiled, never = _indices(held["compiled"], patterns), _indices(held["never"], patterns)
                loaded = hyperscan.loadb(stored[4 + size :], hyperscan.HS_MODE_BLOCK)
                return RegexSet(patterns, loaded, {index: index for index in compiled}, frozenset(never))
            except (hyperscan.error, ValueError, TypeError, KeyError):
                pass  # made by another Hyperscan, or damaged: compile again
        forms: dict[int, bytes] = {}
        never: set[int] = set()
        for index, pattern in enumerate(patterns):
            try:
                form = relaxed(pattern)
            except ValueError as exc:
                logger.debug("searched without Hyperscan: %s", exc)
                continue
            if form is None:
                never.add(index)
            else:
                forms[index] = form.encode("ascii")
        database, ids = _compile(forms)
        if database is not None:
            listed = json.dumps({"compiled": sorted(ids), "never": sorted(never)}).encode()
            result_cache.write_checked(cached, len(listed).to_bytes(4, "big") + listed + hyperscan.dumpb(database))
        return RegexSet(patterns, database, ids, frozenset(never))


LOCK_WAIT_S = 10.0
"""How long a process waits for another that is compiling the same set (a few tenths of a second) before it
compiles the set itself."""


@contextlib.contextmanager
def _one_process_at_a_time(path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``path`` (POSIX ``flock``) while a set is loaded or compiled, so that a server's
    worker processes, starting together on a machine that has no compiled set yet, compile it once and the others
    load it. Without ``fcntl`` (Windows), or when the lock cannot be had in ``LOCK_WAIT_S``, it goes on unlocked:
    the lock only saves work."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        result_cache.private_dir(path.parent)
        handle = open(path, "a+b")  # noqa: SIM115 (held across the yield)
    except OSError:
        yield
        return
    with handle:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        yield  # closing the file releases the lock


def _indices(listed: Any, patterns: Sequence[Any]) -> list[int]:
    if not isinstance(listed, list) or not all(isinstance(i, int) and 0 <= i < len(patterns) for i in listed):
        raise ValueError("not a list of the patterns' indices")
    return listed


def _compile(forms: dict[int, bytes]) -> tuple[Any, dict[int, int]]:
    """A database of ``forms`` (index -> relaxed pattern), leaving out any Hyperscan rejects; and the indices it
    holds."""
    import hyperscan

    flags = hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
    chosen = dict(forms)
    while chosen:
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        try:
            database.compile(
                expressions=list(chosen.values()),
                ids=list(chosen),
                elements=len(chosen),
                flags=[flags] * len(chosen),
            )
        except hyperscan.error:
            # Find the ones it rejects (rare: a relaxed form too large), and compile the rest.
            rejected = [index for index, form in chosen.items() if not _compiles(form, flags)]
            if not rejected:
                return None, {}
            for index in rejected:
                logger.debug("searched without Hyperscan: %r", forms[index])
                del chosen[index]
            continue
        return database, {index: index for index in chosen}
    return None, {}


def _compiles(form: bytes, flags: int) -> bool:
    import hyperscan

    try:
        hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK).compile(expressions=[form], flags=[flags])
    except hyperscan.error:
        return False
    return True
