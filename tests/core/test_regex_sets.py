"""The secret scan's first sieve, ``tandem.core.regex_sets``: a regex relaxed for Hyperscan matches wherever the
regex matches a line of ASCII text (checked on every detect-secrets regex and on tricky ones, against random lines
built from the pieces they look for), the compiled set is kept between processes and survives a damaged cache, and
the scan finds what detect-secrets finds with the set and without Hyperscan alike."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.core import regex_sets, result_cache, secret_engine
from tests.core.test_secret_sieve import SAMPLES, TRICKY_LINES, TRICKY_REGEXES, _same_in

pytestmark = pytest.mark.skipif(not regex_sets.available(), reason="no Hyperscan wheel for this platform")


def _detect_secrets_patterns() -> list[re.Pattern[str]]:
    from detect_secrets.settings import default_settings

    with default_settings():
        secret_engine._sets.clear()
        _set, indices = secret_engine._regex_set()
    return list(indices)


PATTERNS = _detect_secrets_patterns()
TRICKY = [re.compile(source) for source in TRICKY_REGEXES] + [
    re.compile(r"(?i)straße\s*=\s*\w+"),  # a letter with no ASCII case variant, under IGNORECASE
    re.compile(r"(?i)\u017fecret"),  # the long s, which IGNORECASE compares equal to s
    re.compile(r"(?i)\u212aey"),  # the Kelvin sign, equal to k
    re.compile(r"(?a:\w+)@(?-i:X)"),
    re.compile(r"(?x) a \s+ b  # verbose"),
    re.compile(r"x{2000}|y{3,1500}z"),
    re.compile(r"(q)(?P<name>r)(?P=name)\1"),
    re.compile(r"\Aonly\Z"),
    re.compile(r"(?m)^start|end$"),
    re.compile(r"a*+b|c?+d|(?>e+)f"),
]
PIECES = sorted(
    {line for line in TRICKY_LINES}
    | {line for text in SAMPLES.values() for line in text.splitlines() if line.isascii()}
    | {"password", "secret", "api_key", "=", ":", ":=", '"', "'", "`", " ", "\t", ";", "AKIA", "ghp_", "glpat-", "-"}
    | {"192.168.0.1", "8.8.8.8", "10.0.0.1", "x" * 2000, "y" * 1200 + "z", "qrrq", "only", "start", "end", "aab"}
)
ASCII_LINE = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=12)),
    max_size=6,
).map(lambda parts: "".join(parts).replace("\n", " "))


def _possible(pattern: re.Pattern[str], lines: list[str]) -> bool:
    regexes = regex_sets.regex_set((pattern,))
    assert regexes is not None
    return 0 in regexes.possible("\n".join(lines).encode())


@pytest.mark.parametrize("pattern", PATTERNS + TRICKY, ids=lambda p: p.pattern[:40])
@settings(max_examples=80, deadline=None)
@given(lines=st.lists(ASCII_LINE, min_size=1, max_size=4))
def test_a_relaxed_regex_matches_wherever_the_regex_matches_a_line(pattern: re.Pattern[str], lines: list[str]) -> None:
    if any(pattern.search(line) for line in lines):
        assert _possible(pattern, lines), (pattern.pattern, lines)


ASCII_ONLY = [p for p in PATTERNS + TRICKY if p.pattern.isascii() and "\\u" not in p.pattern]


@pytest.mark.parametrize("pattern", ASCII_ONLY, ids=lambda p: p.pattern[:40])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_a_line_the_regex_matches_among_others_makes_it_possible(pattern: re.Pattern[str], data: st.DataObject) -> None:
    """Lines made to match (hypothesis draws them from the regex itself), among random ones."""
    matching = st.from_regex(pattern, alphabet=st.characters(max_codepoint=127)).map(lambda s: s.replace("\n", " "))
    line = data.draw(matching.filter(pattern.search), label="matching line")
    others = data.draw(st.lists(ASCII_LINE, max_size=3), label="other lines")
    at = data.draw(st.integers(0, len(others)), label="at")
    assert _possible(pattern, [*others[:at], line, *others[at:]]), (pattern.pattern, line)


def test_case_variants_outside_ascii_make_ascii_lines_possible() -> None:
    assert _possible(re.compile(r"(?i)\u017fecret"), ["x", "SECRET"])  # the long s is s to IGNORECASE
    assert _possible(re.compile(r"(?i)\u212aey"), ["key"])  # the Kelvin sign is k
    assert not _possible(re.compile(r"(?i)straße\s*=\s*\w+"), ["strasse = x", "STRASSE = y"])  # no ASCII ß


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        (r"(?i)(?a:[^\u212a])ey\s*=", ['key = "x"']),  # (?a:) inside a Unicode regex: ASCII case rules there
        (r"(?i)(?a:[^\u017f])", ["s"]),
        (r"([^a])(?i:\1)", ["Aa"]),  # a reference compared without case to a group read with it
        (r"([^a-z])(?i:\1)", ["Aa"]),
        (r"(^|-)x\1", ["x"]),  # a reference to a group that took only an anchor: it takes no text
        (r"^$", ["x", ""]),  # an empty last line
        (r"^(?:secret)?$", ["x", ""]),
        (r"x{0}y", ["y"]),
    ],
)
def test_regexes_found_missed_by_review_are_possible(source: str, lines: list[str]) -> None:
    pattern = re.compile(source)
    assert any(pattern.search(line) for line in lines)
    assert _possible(pattern, lines)


def test_a_regex_whose_relaxed_form_would_explode_is_searched_without_the_set() -> None:
    """Each reference to a group holding references doubles the form: past ``MAX_FORM`` the regex is not relaxed
    (and quickly so), and the set always reports it possible."""
    source = "(a)" + "".join(f"(\\{n}\\{n})" for n in range(1, 18))
    pattern = re.compile(source)
    with pytest.raises(ValueError, match="over"):
        regex_sets.relaxed(pattern)
    regexes = regex_sets.regex_set((pattern,))
    assert regexes is not None and regexes.always == {0} and regexes.possible(b"b") == {0}


def test_what_the_set_leaves_out_and_what_it_keeps() -> None:
    """It prunes: most regexes are ruled out of ordinary code, and one is kept where it can match."""
    regexes = regex_sets.regex_set(tuple(PATTERNS))
    assert regexes is not None and not regexes.always  # every detect-secrets regex is relaxed and compiled
    code = Path(secret_engine.__file__).read_text(encoding="utf-8").encode()
    assert len(regexes.possible(code)) < len(PATTERNS) // 3
    aws = next(i for i, p in enumerate(PATTERNS) if p.pattern.startswith("(?:A3T"))
    assert aws not in regexes.possible(b'x = "AKIA"\ny = 1\n')
    assert aws in regexes.possible(b'x = 1\nkey = "AKIAZ4XQ7RW2MPL3KVNT"\n')


def test_relaxed_forms_of_each_construct() -> None:
    relaxed = regex_sets.relaxed
    assert relaxed(re.compile("(?<=x)ab(?!c)")) == r"\x61\x62"  # lookarounds dropped
    assert relaxed(re.compile(r"\bab\B")) == r"\x61\x62"
    assert relaxed(re.compile("(?i)a")) == r"[\x41\x61]"
    assert relaxed(re.compile(r"(['\"])x\1")) == r"(?:[\x22\x27])\x78(?:[\x22\x27])"  # a reference: its group
    assert relaxed(re.compile("^a$")) == r"^\x61$"  # at every line's start and end (multi-line flag)
    assert relaxed(re.compile("a{5,2000}")) == r"(?:\x61){5,}"
    assert relaxed(re.compile(".")) == r"[\x00-\x09\x0b-\x7f]"  # never the newline: no match spans lines
    assert relaxed(re.compile("(?s:.)")) == r"(?:[\x00-\x09\x0b-\x7f])"
    assert relaxed(re.compile("ñ")) is None  # matches no line of ASCII text
    assert relaxed(re.compile("ñ|b")) == r"\x62"  # one class to re's parser
    assert relaxed(re.compile("ñx|by")) == r"(?:\x62\x79)"  # an alternative that cannot match is left out
    assert relaxed(re.compile("(?:ñ)*b")) == r"\x62"
    assert relaxed(re.compile("(?i)\u212a")) == r"[\x4b\x6b]"  # the Kelvin sign is k to IGNORECASE


def test_a_regex_that_matches_no_ascii_line_is_never_possible_and_its_non_ascii_lines_are_still_searched() -> None:
    pattern = re.compile(r"contraseña\s*=\s*\w+")
    regexes = regex_sets.regex_set((pattern,))
    assert regexes is not None and regexes.never == {0}
    assert regexes.possible(b"contrasena = x\n") == set()
    lines = ["plain line", "contraseña = valor", "another"]
    text = secret_engine._Text.of(lines, regexes, {pattern: 0})
    assert text.ruled_out(pattern) and text.non_ascii == [2]
    assert secret_engine._lines_for(secret_engine._Sieve(None, (pattern,)), text) == {2}


def test_a_line_holding_a_newline_of_its_own_is_searched_without_the_set() -> None:
    pattern = re.compile(r"TOKEN\s+END")
    regexes = regex_sets.regex_set((pattern,))
    text = secret_engine._Text.of(["TOKEN\nEND", "x"], regexes, {pattern: 0})  # as a transformer could hand it
    assert not text.one_per_line and not text.ruled_out(pattern)
    assert secret_engine._lines_for(secret_engine._Sieve(None, (pattern,)), text) == {1}


def test_an_empty_text_rules_nothing_out() -> None:
    regexes = regex_sets.regex_set((re.compile("x*"), re.compile("ñ")))
    assert regexes is not None and regexes.possible(b"") == {0}


_CHILD = """
import json, re, sys
from tandem.core import regex_sets
made = regex_sets.regex_set(tuple(re.compile(p, f) for p, f in json.loads(sys.argv[1])))
print(json.dumps([sorted(made.possible(line.encode())) for line in json.loads(sys.argv[2])]))
"""


def _in_a_process(cache: Path, lines: list[str]) -> list[list[int]]:
    """The set of the detect-secrets patterns made in a fresh process with ``cache`` as its cache home: what
    it finds possible in each of ``lines``."""
    described = json.dumps([(p.pattern, p.flags) for p in PATTERNS])
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, described, json.dumps(lines)],
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


def test_the_compiled_set_is_kept_between_processes_and_a_damaged_one_is_compiled_again(tmp_path: Path) -> None:
    lines = ['key = "AKIAZ4XQ7RW2MPL3KVNT"', "nothing here", 'password = "hunter2hunter2"']
    first = _in_a_process(tmp_path, lines)
    kept = list((tmp_path / "tandem").glob("regex-set-*.hyperscan"))
    assert len(kept) == 1 and first[0] and not first[1] and first[2]
    assert first == [sorted(regex_sets.regex_set(tuple(PATTERNS)).possible(line.encode())) for line in lines]
    stored = kept[0].read_bytes()
    assert _in_a_process(tmp_path, lines) == first  # loaded, the same answers
    kept[0].write_bytes(stored[:-10] + b"damaged!!!")
    assert _in_a_process(tmp_path, lines) == first  # the damaged file is passed over and compiled again
    assert result_cache.read_checked(kept[0]) is not None


@pytest.fixture(params=["hyperscan", "without"])
def set_or_not(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "without":
        monkeypatch.setattr(regex_sets, "available", lambda: False)
    regex_sets.regex_set.cache_clear()
    secret_engine._sets.clear()
    yield request.param
    regex_sets.regex_set.cache_clear()
    secret_engine._sets.clear()


def test_every_kind_of_secret_is_found_with_the_set_and_without_it(tmp_path: Path, set_or_not: str) -> None:
    for name, text in SAMPLES.items():
        (tmp_path / name).write_bytes(text.encode())
    found = _same_in(tmp_path, sorted(SAMPLES))
    assert len({kind for _, _, kind, _ in found}) >= 20
    with secret_engine.configured(None, "defaults"):
        regexes, _indices = secret_engine._regex_set()
    assert (regexes is None) == (set_or_not == "without")


_COMPILING = """
import json, re, sys
from tandem.core import regex_sets
compiled = []
real = regex_sets._compile
regex_sets._compile = lambda forms: (compiled.append(1), real(forms))[1]
made = regex_sets.regex_set(tuple(re.compile(p, f) for p, f in json.loads(sys.argv[1])))
print(len(compiled), made is not None and not made.always)
"""


def test_processes_starting_together_compile_the_set_once(tmp_path: Path) -> None:
    """A server's worker processes start at once on a machine with no compiled set: one compiles, the others wait
    for it and load it."""
    described = json.dumps([(p.pattern, p.flags) for p in PATTERNS])
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    children = [
        subprocess.Popen([sys.executable, "-c", _COMPILING, described], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [child.communicate(timeout=120)[0].split() for child in children]
    assert all(child.returncode == 0 for child in children)
    assert sorted(outputs) == [["0", "True"], ["0", "True"], ["1", "True"]]


_PIECES = ["a", "b", "A", "K", "s", "-", "_", " ", "[^a]", "[a-c]", "[^A-Z]", r"\w", r"\W", r"\s", r"\S", r"\d", "."]
_PIECES += ["\u017f", "\u212a", "ñ", "[^\u017f]", r"\x0b", "\t"]
_ANCHORS = ["^", "$", r"\A", r"\Z", r"\b", r"\B"]


def _random_regex(rng: random.Random, depth: int, groups: list[int]) -> str:
    """A random regex of the constructs ``relaxed`` handles, nested a few levels."""
    roll = rng.random()
    if depth > 2 or roll < 0.3:
        pick = rng.random()
        if pick < 0.12:
            return rng.choice(_ANCHORS)
        if pick < 0.22 and groups[0]:
            return f"\\{rng.randint(1, groups[0])}"
        return rng.choice(_PIECES)
    if roll < 0.42:
        return "".join(_random_regex(rng, depth + 1, groups) for _ in range(3))
    if roll < 0.52:
        return _random_regex(rng, depth + 1, groups) + "|" + _random_regex(rng, depth + 1, groups)
    if roll < 0.64:
        groups[0] += 1
        return f"({_random_regex(rng, depth + 1, groups)})"
    if roll < 0.74:
        return f"(?{rng.choice(['i', '-i', 'a', 's', 'x', 'u'])}:{_random_regex(rng, depth + 1, groups)})"
    if roll < 0.86:
        repeat = rng.choice(["*", "+", "?", "{2}", "{0,2}", "*?", "++", "?+", "{1,3}?", "{0}", "{1200}"])
        return f"(?:{_random_regex(rng, depth + 1, groups)}){repeat}"
    if roll < 0.93:
        return f"(?{rng.choice(['=', '!', '<=', '<!'])}{rng.choice(_PIECES)})"
    if groups[0]:
        yes, no = _random_regex(rng, depth + 1, groups), _random_regex(rng, depth + 1, groups)
        return f"(?({rng.randint(1, groups[0])}){yes}|{no})"
    return f"(?>{_random_regex(rng, depth + 1, groups)})"


@pytest.mark.parametrize("seed", range(4))
def test_random_regexes_are_never_ruled_out_of_a_line_they_match(seed: int) -> None:
    """Random regexes of every construct (references, conditionals, inline flags, lookarounds, anchors, case
    variants outside ASCII) against random lines of the characters they are made of."""
    rng = random.Random(f"regex-{seed}")
    patterns: list[re.Pattern[str]] = []
    while len(patterns) < 300:
        source = ("(?i)" if rng.random() < 0.5 else "") + _random_regex(rng, 0, [0])
        try:
            patterns.append(re.compile(source))
        except (re.error, OverflowError):
            continue
    regexes = regex_sets.regex_set(tuple(patterns))
    assert regexes is not None and len(regexes.always) < len(patterns) // 2  # most are relaxed and compiled
    matched = 0
    for _ in range(300):
        count = rng.randint(1, 3)
        lines = ["".join(rng.choice("aAbBkKsS-_ \t\x0b1") for _ in range(rng.randint(0, 5))) for _ in range(count)]
        possible = regexes.possible("\n".join(lines).encode())
        for index, pattern in enumerate(patterns):
            if any(pattern.search(line) for line in lines):
                matched += 1
                assert index in possible, (pattern.pattern, lines, regex_sets.relaxed(pattern))
    assert matched > 10_000  # the lines did match the regexes, often
