"""Tandem's faster file scan finds exactly what detect-secrets' own ``scan_file`` finds: on Tandem's repository and
on files holding every kind of secret the default plugins know, in the places a line-skipping scan could miss."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from detect_secrets.core import scan
from detect_secrets.settings import default_settings, transient_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.core.secret_engine import scan_file

ROOT = Path(__file__).resolve().parents[2]

SAMPLES = {
    "keys.py": (
        'AWS_ACCESS_KEY_ID = "AKIAZ4XQ7RW2MPL3KVNT"\n'
        'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
        'password = "hunter2-correct-horse-battery"\n'
        'PASSWORD="Tr0ub4dor&3-zebra"\n'
        'db_pass = "s3cr3t-value-here-1234"\n'
        "token = 'ghp_1x9Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3'\n"
        'allowed = "AKIAZ4XQ7RW2MPL3KVNX"  # pragma: allowlist secret\n'
        "# pragma: allowlist nextline secret\n"
        'later = "AKIAQ7RT2W4XM9PL6KZB"\n'
        'hex_value = "b3c1f9a27d4e8a6f0c5d2e9b7a1f3c8d6e4b2a90"\n'
        'b64 = "Zm9vYmFyYmF6cXV4c2VjcmV0dmFsdWVoZXJlMTIzNDU2Nzg5MA=="\n'
        'digits = "12345678901234567890123"\n'
        'jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."\n'
        '  "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"\n'
        'jwt_one_line = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"\n'
        'stripe = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"\n'
        'slack = "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx"\n'
        'hook = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"\n'
        'sendgrid = "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"\n'
        'twilio = "AC0123456789abcdef0123456789abcdef"\n'
        'mailchimp = "0123456789abcdef0123456789abcdef-us12"\n'
        'npm_line = "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789"\n'
        'url = "https://admin:Sup3rS3cretPw@db.example.com:5432/app"\n'
        'telegram = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"\n'
        'discord = "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"\n'
        'square = "sq0csp-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"\n'
        'openai = "sk-abcdefghij0123456789T3BlbkFJabcdefghij0123456789"\n'
        'pypi = "pypi-AgEIcHlwaS5vcmc' + "A" * 70 + '"\n'
        'azure = "AccountKey=' + "a" * 86 + '=="\n'
        'artifactory = "AKCp5budTFpbypBqQbGJPz3pGCi28pPivfWczqjfYb9drAmd9LbRZbj6UpKFxJXA8ksWGc9fM"\n'
        'ibm_cloud_api_key = "abcd1234abcd1234abcd1234abcd1234abcd1234abcd"\n'
        'ibm_cos_hmac_secret_access_key = "abcdef0123456789abcdef0123456789abcdef0123456789"\n'
        'softlayer_api_key = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"\n'
        'cloudant_password = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"\n'
        'gitlab = "glpat-abcdefghij0123456789"\n'
        'server = "8.8.8.8:53"\n'
        'private_ip = "192.168.1.20"\n'
        'SECRET_kEy_Ǳ = "Pl4in-words-that-count-Ǳ"\n'
        '\u017fecret = "long-s-is-a-case-variant-of-s"\n'
        '\u212aEY = "Kelvin\u212a-sign-value-9a8b7c6d"\n'
        'if ("hunter22-is-not-mine" == my_password_field) {}\n'
        "trailing = 'AKIAZ4XQ7RW2MPL3KVNW'   \n"
        "AKIAZ4XQ7RW2MPL3KVNY\n"
    ),
    "id_rsa": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n",
    "settings.yaml": (
        'database:\n  password: unquoted-yaml-password-123\n  escaped: "Ystal\\x77art99plover"\n'
        "api_key: 'Zm9vYmFyYmF6cXV4c2VjcmV0dmFsdWVoZXJlMTIz'\nlist:\n  - b3c1f9a27d4e8a6f0c5d2e9b7a1f3c8d6e4b2a91\n"
    ),
    "app.ini": ("[server]\npassword = ini-password-value-777\nkey = \n  continued-Zm9vYmFyYmF6cXV4c2VjcmV0dmFsdWVo\n"),
    ".env": "SECRET_TOKEN=abc123def456ghi789jkl012mno345\nAPI_KEY=AKIAJ5ZQ3TW8NRB2XLYP\n",
    "main.go": 'package main\n\nconst apiKey := "go-secret-value-abcdef123456"\nvar password = "gopass-9999-zzzz"\n',
    "Config.java": 'class C { String secret = "java-secret-value-0987654321"; }\n',
    "app.js": "const creds = {\n  password: 'js-password-value-1234',\n  secret: `tmpl-${x}`,\n};\n",
    "crlf.txt": 'password = "crlf-password-value-55"\r\napi_key = "AKIAZ4XQ7RW2MPL3KVNQ"\r\n',
    "clean.py": '"""Nothing secret."""\n\nVALUE = "hello"\nKEYS = ["a", "b"]\n',
    "unicode.md": 'Ünïcödé tëxt with a pässword = "ünicode-password-value" and 8.8.4.4 — done\n',
}


def _findings(files: list[str], scanner: object) -> list[tuple[str, int, str, str]]:
    return [(s.filename, s.line_number, s.type, s.secret_hash) for name in files for s in scanner(name)]  # type: ignore[operator]


def _same_in(root: Path, files: list[str]) -> list[tuple[str, int, str, str]]:
    previous = os.getcwd()
    os.chdir(root)
    try:
        with default_settings():
            theirs = _findings(files, scan.scan_file)
            ours = _findings(files, scan_file)
    finally:
        os.chdir(previous)
    assert ours == theirs
    return ours


def test_every_kind_of_secret_is_found_as_detect_secrets_finds_it(tmp_path: Path) -> None:
    for name, text in SAMPLES.items():
        (tmp_path / name).write_bytes(text.encode())
    found = _same_in(tmp_path, sorted(SAMPLES))
    kinds = {kind for _, _, kind, _ in found}
    assert len(kinds) >= 20, kinds  # the samples exercise most plugins, so the comparison means something
    assert {"settings.yaml", "app.ini", "id_rsa", "keys.py", ".env"} <= {path for path, *_ in found}


def test_tandems_own_repository_scans_the_same() -> None:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [name for name in listed.splitlines() if (ROOT / name).is_file()]
    assert len(files) > 100
    _same_in(ROOT, files)


def test_keyword_lines_in_every_arrangement_scan_the_same(tmp_path: Path) -> None:
    """The sieve hands a line to the keyword detector only when it holds a denylisted word, a quote and the
    separator each of its regexes needs: lines with some of these and not others, in every order, in several file
    types, some with non-ASCII letters (compared lowered only where ASCII), must come out as detect-secrets finds."""
    import itertools

    words = ["password", "API_KEY", "db_pass", "Secret", "contraseña", "PWD", "auth-key", "ключ_secret"]
    separators = ["=", ":", ":=", "==", "!=", "=>", "(", ";", " ", ""]
    quotes = ['"', "'", "`", ""]
    values = ["hunter2hunter2", "s3cr3t,x", "Zq9vX2mN8pL4", "ß0ñ9ü8ö7ä6"]
    lines = []
    for word, sep, quote, value in itertools.product(words, separators, quotes, values):
        lines.append(f"{word}{sep}{quote}{value}{quote}")
        lines.append(f"{quote}{value}{quote} {sep} {word}")
        lines.append(f"x = {word}{sep} {quote}{value}{quote};")
    text = "\n".join(lines) + "\n"
    names = ["conf.py", "conf.go", "conf.yaml", "conf.ini", "conf.c", "conf.cpp", "conf.js", "conf.txt"]
    for name in names:
        (tmp_path / name).write_text(text, encoding="utf-8")
    found = _same_in(tmp_path, names)
    assert {path for path, *_ in found} == set(names)  # every file type has findings: the comparison means something
    assert len(found) > 1000


@pytest.mark.parametrize("limit", [2.0, 5.5, math.log2(7), math.log2(12)])
def test_a_baselines_own_limits_are_honoured(tmp_path: Path, limit: float) -> None:
    """Limits of a baseline's own, among them limits of exactly log2(n): the computed entropy of n distinct
    characters can come out a hair over it, and detect-secrets then reports the string."""
    exact = ['x = "abcdefg"', 'y = "ABCDEFGHIJKL"', 'z = "0123456"', 'w = "0123456789ab"']
    (tmp_path / "keys.py").write_text(SAMPLES["keys.py"] + "\n".join(exact) + "\n")
    config = {
        "plugins_used": [
            {"name": "Base64HighEntropyString", "limit": limit},
            {"name": "HexHighEntropyString", "limit": limit / 2},
            {"name": "KeywordDetector", "keyword_exclude": "hunter"},
        ],
        "filters_used": [],
    }
    previous = os.getcwd()
    os.chdir(tmp_path)
    try:
        with transient_settings(config):
            assert _findings(["keys.py"], scan_file) == _findings(["keys.py"], scan.scan_file)
    finally:
        os.chdir(previous)


def test_a_one_shot_pack_scans_in_its_own_process_and_leaves_secrets_out(tmp_path: Path) -> None:
    """``tandem pack`` run in the workspace scans without starting worker processes; what it finds is left out."""
    (tmp_path / "keys.py").write_text(SAMPLES["keys.py"])
    (tmp_path / "clean.py").write_text(SAMPLES["clean.py"])
    done = subprocess.run(
        [sys.executable, "-m", "tandem", "pack", "-o", "out.xml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    packed = (tmp_path / "out.xml").read_text()
    assert '<file path="clean.py">' in packed and "keys.py" not in packed.split("</directory_structure>")[1]
    assert "1 skipped" in done.stdout


def test_tokens_found_by_searching_the_whole_file_are_on_the_lines_detect_secrets_finds(tmp_path: Path) -> None:
    """Some regexes are searched over the whole file at once (none of them can match a newline): tokens at the
    start and end of lines, on consecutive lines, two on a line, and followed on the next line by word characters
    (which a lookahead such as GitLab's ``(?!\\w)`` must not see) come out on detect-secrets' lines."""
    tokens = [
        "AKIAZ7Q3MPLE4XK2WB9D",
        "glpat-" + "Zq9vX2mN8pL4aB7cD1eF",
        "GR1348941" + "aB7cD1eFzQ9vX2mN8pL4",
        "AC" + "0123456789abcdef" * 2,
        "SK" + "fedcba9876543210" * 2,
        "SG." + "aB7cD1eFzQ9vX2mN8pL4xy" + "." + "Q" * 43,
        "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs",
        "-----BEGIN RSA PRIVATE KEY-----",
        "https://user:Zq9vX2mN8pL4@example.com/",
    ]
    lines = []
    for token in tokens:
        lines += [token, f"x = {token}", f"{token}\nword_after", f"{token} {token}", f"({token})", f"_{token}_"]
    text = "\n".join(lines) + "\nlast " + tokens[0]  # and one at the very end, with no newline after it
    names = ["tokens.txt", "tokens.py", "tokens.yaml"]
    for name in names:
        (tmp_path / name).write_text(text, encoding="utf-8")
    found = _same_in(tmp_path, names)
    assert len({kind for _, _, kind, _ in found}) >= 6, found


TRICKY_REGEXES = [
    r"ab(?i:c)+",  # a scoped IGNORECASE inside a repeat
    r"xy(?>(?i:key))",  # ... inside an atomic group
    r"(?=(?i:tok))TOK\w*",  # ... inside a lookahead
    r"AKIA[0-9A-Z]{4}(?!\w)",  # a lookahead at the end of a line
    r"(?<![\w.])ZX\d+",  # a lookbehind at the start of a line
    r"(?<=\W)QW\d",  # a lookbehind that would see a newline
    r"\bGR\d{3}\b",
    r"(AB)\d+\1",
    r"^KEY=\w+",
    r"VAL=\w+$",
    r"PASS\s*=\s*\w+",
    r"TOKEN[^\n]*END",
    r"TOKEN[^x]*END",
    r"(?s:BEGIN.END)",
    r"(?:(AA)|BB)(?(1)CC|DD)",
    r"SECRET",
]
TRICKY_LINES = [
    "abC",
    "abc",
    "ab",
    "xyKEY",
    "xykey",
    "xy",
    "TOKEN",
    "TOK1",
    "tok",
    "AKIA1234",
    "AKIA1234x",
    "AKIA1234 x",
    "ZX12",
    ".ZX12",
    "aZX12",
    "QW1",
    " QW1",
    "GR123",
    "GR1234",
    "AB12AB",
    "AB12",
    "KEY=value",
    " KEY=value",
    "VAL=x",
    "VAL=x y",
    "PASS = word",
    "PASS =",
    "TOKEN middle END",
    "TOKEN",
    "END",
    "BEGIN END",
    "BEGINxEND",
    "AACC",
    "BBDD",
    "AADD",
    "SECRET",
    "secret",
    "ключ SECRET",
    "",
    "   ",
]


@pytest.mark.parametrize("source", TRICKY_REGEXES)
def test_the_sieve_never_drops_a_line_a_regex_matches(source: str) -> None:
    """Every line ``pattern.search`` matches is handed on: by literals (every set the regex needs, case as the
    regex compares it) or by searching the whole file at once (regexes that cannot match a newline)."""
    import random

    from tandem.core import secret_engine

    pattern = re.compile(source)
    rng = random.Random(source)
    for _ in range(60):
        lines = [rng.choice(TRICKY_LINES) for _ in range(rng.randint(0, 8))]
        chosen = secret_engine._lines_for(secret_engine._Sieve(None, (pattern,)), secret_engine._Text.of(lines))
        matching = {number for number, line in enumerate(lines, start=1) if pattern.search(line.rstrip())}
        assert matching <= chosen, (lines, matching - chosen)
        assert chosen <= set(range(1, len(lines) + 1))


def test_some_bundled_regexes_are_searched_whole_and_none_that_can_match_a_newline() -> None:
    from detect_secrets.plugins import keyword
    from detect_secrets.settings import default_settings, get_plugins

    from tandem.core import secret_engine

    with default_settings():
        regexes = {p.pattern: p for plugin in get_plugins() for p in getattr(plugin, "denylist", ())}
    whole = {source for source, p in regexes.items() if secret_engine._searched_whole(p)}
    assert any(source.startswith("(?:A3T") for source in whole)  # AWS keys
    assert any("PRIVATE KEY" in source for source in whole)
    assert not any(secret_engine._line_local(p) for p in keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)  # \s*
    assert secret_engine._line_local(re.compile(r"[^\n]x")) and not secret_engine._line_local(re.compile(r"[^x]"))
    assert not secret_engine._line_local(re.compile(r"^x")) and not secret_engine._line_local(re.compile(r"(?s:.)"))


def test_worker_tasks_share_the_bytes_and_keep_every_file_in_order() -> None:
    from tandem.core import secret_engine, worker_processes

    sizes = [100] * 300 + [5 * secret_engine.BATCH_BYTES] + [3_000] * 200 + [0] * 10
    files = [f"f{n}" for n in range(len(sizes))]
    batches = secret_engine._batches(files, sizes)
    assert [name for batch in batches for name in batch] == files
    by_name = dict(zip(files, sizes, strict=True))
    weights = [sum(by_name[name] for name in batch) for batch in batches]
    big = next(i for i, batch in enumerate(batches) if "f300" in batch)
    assert batches[big][-1] == "f300"  # a task ends with the file that takes it over its share
    limit = secret_engine.BATCH_BYTES + 3_000
    assert all(weight <= limit for i, weight in enumerate(weights) if i != big)
    small = secret_engine._batches(files[:300], sizes[:300])  # 30 kB: a few tasks per worker, not one per file
    assert 1 <= len(small) <= worker_processes.worker_count() * secret_engine.TASKS_PER_WORKER + 1


def test_high_entropy_lines_are_those_with_a_quoted_string_over_the_limit() -> None:
    """The high-entropy sieve first finds lines holding a quoted string long enough to be over the limit, then
    checks those: lines of quoted strings at and around the shortest length that can count, several to a line,
    sharing quotes (``"ab"CD…"``), must come out as checking every quoted string of every line does."""
    import random

    from detect_secrets.settings import default_settings, get_plugins

    from tandem.core import secret_engine

    rng = random.Random("entropy")
    over = 0
    with default_settings():
        plugins = [p for p in get_plugins() if hasattr(p, "entropy_limit")]
    assert len(plugins) == 2
    for plugin in plugins:
        assert secret_engine._long_enough(plugin.regex, plugin.charset, plugin.entropy_limit) is not None
        shortest = next(n for n in range(1, 200) if math.log2(n) > plugin.entropy_limit)  # 23 and 9
        charset = plugin.charset.replace("\\", "")
        for _ in range(300):
            parts = []
            for _ in range(rng.randint(1, 4)):
                quote = rng.choice("'\"")
                value = "".join(
                    rng.choice(charset) for _ in range(rng.choice([1, 5, shortest - 1, shortest, shortest + 3, 40]))
                )
                parts.append(rng.choice(["", " ", "=", quote]) + quote + value + quote)
            lines = ["".join(parts), "x = 1", "".join(reversed(parts))]
            text = secret_engine._Text.of(lines)
            expected = {
                number
                for number, line in enumerate(text.lines, start=1)
                if any(secret_engine._over_limit(plugin, m[2]) for m in plugin.regex.finditer(line))
            }
            assert secret_engine._entropy_lines(plugin, plugin.regex, text) == expected, lines
            over += len(expected)
    assert over > 100  # lines over the limit were made, not only lines under it


INI_PIECES = [
    "key",
    "password",
    "x",
    " ",
    "\t",
    "=",
    ":",
    "[",
    "]",
    "[sec]",
    "#",
    ";",
    "value",
    "Zm9vYmFy",
    "é",
    "\n",
    "\n",
]
INI_TEXTS = [
    "[server]\npassword = ini-password-value-777\nkey = \n  continued-Zm9vYmFyYmF6cXV4c2VjcmV0dmFsdWVo\n",
    "[server]\npassword = ini-password-value-777\nprose without a delimiter\n",
    "# Title\n\nSome prose here.\n\n[link]: https://example.com\n",
    "[![badge](https://x/y.svg)](https://x)\n\npassword = hunter2hunter2\n  indented prose\n",
    "password = hunter2hunter2\n\tcontinued value\n; comment\n",
    "\n\n   \n# only comments\n; more\n",
    "no delimiter at all",
    "",
]


def _transforms_the_same(text: str) -> None:
    from detect_secrets.transformers import get_transformed_file

    from tandem.core.secret_engine import _NOT_INI, _Held, _transformed

    for name in ("conf.ini", "notes.md", "README", "settings.cfg", "app.py", "data.yaml"):
        for eager in (False, True):
            theirs = get_transformed_file(_Held(text, name), use_eager_transformers=eager)
            assert _transformed(_Held(text, name), eager) == theirs, (name, eager, text)
    if _NOT_INI.search(text):  # what the shortcut assumes: configparser rejects the text, with or without a header
        import configparser

        from detect_secrets.transformers.config import IniFileParser

        for header in (False, True):
            with pytest.raises(configparser.Error):
                list(IniFileParser(_Held(text, "x.ini"), add_header=header))


@pytest.mark.parametrize("text", INI_TEXTS)
def test_ini_transformers_are_skipped_only_where_configparser_would_fail(text: str) -> None:
    _transforms_the_same(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(INI_PIECES), max_size=40).map("".join))
def test_ini_transformers_are_skipped_only_where_configparser_would_fail_on_generated_text(text: str) -> None:
    _transforms_the_same(text)


def test_ini_transformers_are_skipped_on_prose() -> None:
    from tandem.core.secret_engine import _NOT_INI

    assert _NOT_INI.search(INI_TEXTS[2]) and _NOT_INI.search(INI_TEXTS[1])
    assert not _NOT_INI.search(INI_TEXTS[0]) and not _NOT_INI.search(INI_TEXTS[4])


def test_prepare_reads_every_plugin_regex_so_a_forked_worker_reads_none() -> None:
    """A worker forked from a prepared fork server starts with the sieve's reading of every regex done: scanning
    the whole repository after ``prepare`` parses no regex again."""
    code = """
import subprocess, sys
from tandem.core import secret_engine as se
se.prepare()
before = se._parsed.cache_info().misses, se._long_enough.cache_info().misses
files = subprocess.run(["git", "ls-files"], cwd=sys.argv[1], capture_output=True, text=True).stdout.split()
scan = se.scan_file_batch(sys.argv[1], 10**7, None, "pack_codebase", files)
after = se._parsed.cache_info().misses, se._long_enough.cache_info().misses
print(before[0], after[0] - before[0], after[1] - before[1], scan.count)
"""
    env = {**os.environ, "TANDEM_RESULT_CACHE": "off"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    parsed, parsed_later, long_later, scanned = map(int, done.stdout.split())
    assert parsed > 30 and scanned > 100
    assert (parsed_later, long_later) == (0, 0)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([2.0, 3.0, 4.5, math.log2(7), math.log2(12), math.log2(16), 5.5]),
    st.sampled_from(["hex", "base64"]),
    st.data(),
)
def test_a_string_is_over_the_entropy_limit_exactly_when_the_plugin_says_so(limit: float, kind: str, data) -> None:  # type: ignore[no-untyped-def]
    """The bounds checked first (log2 of the length, of the number of distinct characters) only ever rule out
    strings the plugin's own entropy keeps under the limit, also where the limit is log2 of a whole number."""
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString

    from tandem.core.secret_engine import _over_limit

    plugin = HexHighEntropyString(limit) if kind == "hex" else Base64HighEntropyString(limit)
    alphabet = data.draw(st.lists(st.sampled_from(plugin.charset), min_size=1, max_size=30, unique=True))
    value = data.draw(st.text(st.sampled_from(alphabet), min_size=1, max_size=64))
    uniform = "".join(alphabet) * data.draw(st.integers(1, 3))  # n distinct characters, evenly: log2(n) bits
    for text in (value, uniform):
        assert _over_limit(plugin, text) == (plugin.calculate_shannon_entropy(text) > plugin.entropy_limit)
