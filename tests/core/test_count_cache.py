"""What the result cache keeps for counting and scanning is right or absent: counts of joined parts and of cached
texts are tiktoken's own (always compared with the raw encoder, never with Tandem's counting), a later process
counts a known text without building an encoder, and a file's cached secret findings are those of exactly its
name, bytes and settings, with no secret in them."""

from __future__ import annotations

import itertools
import json
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tandem.config import load_settings
from tandem.core import CallContext, result_cache, secret_engine, tokens, worker_processes
from tests.exact_tokens import repository_texts

ROOT = Path(__file__).resolve().parents[2]
CUT_CHARS = "\n \t/<a1'é\r#As"
"""Characters that matter where parts meet: newlines, other whitespace, the slash tiktoken joins to a newline,
punctuation, letters (and the ``'s`` of a contraction), digits, a non-ASCII letter."""
ENDINGS = ["", "\n", "\n\n", " \n", "\r\n", "#\n", "\n\t"]
STARTS = ["", "a", "<", "#", "1", "'s", "é", "/", " ", "\n", "\t", "A"]
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _plain(text: str, name: tokens.EncodingName) -> int:
    return len(tokens.encoding(name).encode_ordinary(text))


@pytest.fixture(scope="module", autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Counts kept in a cache of this module's own, never the user's; the encoders are built first, from the
    user's parsed vocabulary (a fresh cache directory would only make the first build slower)."""
    for name in tokens.ENCODINGS:
        tokens.encoding(name)
    home = tmp_path_factory.mktemp("cache-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(home))
        patch.delenv("TANDEM_RESULT_CACHE", raising=False)
        yield home


def _run(code: str, cache_home: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, "XDG_CACHE_HOME": str(cache_home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


part = st.builds(
    lambda start, body, end: start + body + end,
    st.sampled_from(STARTS),
    st.text(alphabet=CUT_CHARS, max_size=12),
    st.sampled_from(ENDINGS),
)


@FAST
@given(parts=st.lists(part, max_size=12), name=st.sampled_from(tokens.ENCODINGS))
@example(parts=["x\n", "/y"], name="o200k_base")
@example(parts=["x\n", "\n", "y"], name="o200k_base")
@example(parts=["#\n", "", "/", "a\n", "b"], name="cl100k_base")
@example(parts=["a\r", "\n", "b"], name="cl100k_base")
def test_joined_parts_count_as_their_text(parts: list[str], name: tokens.EncodingName) -> None:
    assert tokens.count_joined(parts, name) == _plain("".join(parts), name)
    # Counted again, from what was remembered and kept: the same.
    assert tokens.count_joined(parts, name) == _plain("".join(parts), name)


@FAST
@given(
    before=st.builds(str.__add__, st.text(alphabet=CUT_CHARS, max_size=16), st.sampled_from(ENDINGS)),
    after=st.one_of(
        st.builds(str.__add__, st.sampled_from(STARTS), st.text(alphabet=CUT_CHARS, max_size=16)),
        st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=4),
    ),
)
def test_a_clean_cut_is_one_no_piece_crosses(before: str, after: str) -> None:
    if tokens.cuts_cleanly(before, after):
        for name in tokens.ENCODINGS:
            assert _plain(before, name) + _plain(after, name) == _plain(before + after, name)


def test_the_cuts_refused_are_ones_that_would_miscount() -> None:
    """Where a piece does cross (a newline joined to the next newline, or to a slash), the cut is refused; a cut
    after a newline before a letter or punctuation is taken."""
    for before, after in [("x\n", "\n"), ("#\n", "/x"), ("a\n", "\n\nb")]:
        assert not tokens.cuts_cleanly(before, after)
        assert any(_plain(before, n) + _plain(after, n) != _plain(before + after, n) for n in tokens.ENCODINGS)
    for before, after in [("x\n", "y"), ("x\n\n", "<file>"), ("#\n", "#"), ("\n", "'s")]:
        assert tokens.cuts_cleanly(before, after)
    assert not tokens.cuts_cleanly("x", "y")
    assert not tokens.cuts_cleanly("x\n", "")


@pytest.mark.parametrize("name", tokens.ENCODINGS)
def test_repository_files_cut_at_any_lines_count_as_they_are(name: tokens.EncodingName) -> None:
    chance = random.Random(f"cuts-{name}")
    texts = repository_texts()
    assert len(texts) > 100
    clean = 0
    every: list[str] = []
    for text in texts:
        lines = text.splitlines(keepends=True)
        cuts = sorted(chance.sample(range(1, len(lines)), min(len(lines) - 1, chance.randint(0, 12)))) if lines else []
        parts = ["".join(lines[a:b]) for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True)]
        assert "".join(parts) == text
        clean += sum(tokens.cuts_cleanly(a, b) for a, b in itertools.pairwise(parts))
        assert tokens.count_joined(parts, name) == _plain(text, name), text[:200]
        every += [f'<file path="{len(every)}">\n', *parts, "</file>\n\n"]
    assert clean > 100  # many parts really were counted apart
    assert tokens.count_joined(every, name) == _plain("".join(every), name)


def test_a_later_process_counts_a_known_text_without_an_encoder(tmp_path: Path) -> None:
    text = (ROOT / "src" / "tandem" / "core" / "tokens.py").read_text() + f"\n\n# {tmp_path.name}\n"
    parts = [text[: len(text) // 2], text[len(text) // 2 :], "\n\n<footer/>\n"]
    source = tmp_path / "text.json"
    source.write_text(json.dumps({"text": text, "parts": parts}))
    code = """
        import json, sys
        from tandem.core import tokens
        given = json.loads(open(sys.argv[1]).read())
        print(tokens.count_tokens(given["text"]))
        print(tokens.count_joined(given["parts"], "cl100k_base"))
        print(tokens.counter.cache_info().currsize)
    """
    home = tmp_path / "cache-home"
    first = _run(code, home, str(source))
    assert first[2] != "0"  # the first process had to encode
    again = _run(code, home, str(source))
    assert again == [str(_plain(text, "o200k_base")), str(_plain("".join(parts), "cl100k_base")), "0"]
    assert first[:2] == again[:2]


def test_a_different_text_gets_its_own_count() -> None:
    """Texts that share most of their blocks (and a text cached under the other encoding) are each counted as
    themselves."""
    common = "def first():\n    return 1\n\n"
    texts = [
        common + "def second():\n    return 2\n",
        common + "def second():\n    return 22\n",
        common + "def second():\n    return 2\n\n",
        common,
        common[:-1],
        "Ünïcödé приве́т 世界 — " * 20,
    ]
    for text in texts:
        assert tokens.count_tokens(text) == _plain(text, "o200k_base")
    assert tokens.count_many(texts) == [_plain(text, "o200k_base") for text in texts]
    assert _plain(texts[-1], "o200k_base") != _plain(texts[-1], "cl100k_base")
    assert tokens.count_many(texts, "cl100k_base") == [_plain(text, "cl100k_base") for text in texts]
    assert tokens.count_joined([common, "x\n"]) == _plain(common + "x\n", "o200k_base")


def test_a_later_process_does_not_mistake_one_text_for_another(tmp_path: Path) -> None:
    home = tmp_path / "cache-home"
    code = """
        import sys
        from tandem.core import tokens
        for text in sys.argv[1:]:
            print(tokens.count_tokens(text))
    """
    cached = "alpha\n\nbeta gamma delta\n\nepsilon\n"
    assert _run(code, home, cached) == [str(_plain(cached, "o200k_base"))]
    others = [cached + "zeta\n", cached.replace("gamma", "GAMMA"), cached[:-1], "alpha\n\n", cached]
    assert _run(code, home, *others) == [str(_plain(other, "o200k_base")) for other in others]


# Secrets ------------------------------------------------------------------------------------------------------------

MAX_BYTES = 1_000_000
AWS_KEY = "AKIAZ4XQ7RW2MPL3KVNT"
PASSWORD = "hunter2-correct-horse-battery"
GITHUB_TOKEN = "ghp_1x9Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3"
KEYS = f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\npassword = "{PASSWORD}"\ntoken = \'{GITHUB_TOKEN}\'\n'
CLEAN = '"""Nothing secret."""\n\nVALUE = "hello"\n'
LIMITED = {"plugins_used": [{"name": "Base64HighEntropyString", "limit": 3.0}], "filters_used": []}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with a file holding secrets and a clean one; this test's own result cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    root = tmp_path / "ws"
    root.mkdir()
    (root / "keys.py").write_text(KEYS)
    (root / "clean.py").write_text(CLEAN)
    return root


def _cached(
    root: Path, names: list[str], config: secret_engine.Config | None = None, hashes: bool = False
) -> dict[str, list[Any]]:
    """The findings the result cache holds for ``names`` as they are on disk now, under ``config``."""
    identity = secret_engine._identity(config)
    assert identity is not None
    return secret_engine._already_scanned(identity, secret_engine._digests_of(str(root), MAX_BYTES, names), hashes)


def _unhashed(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings as the cache gives them back: everything but the hash of the secret, which it never keeps."""
    return [{**entry, "hashed_secret": None} for entry in found]


def _stored_values(cache_home: Path) -> list[str]:
    """What the store on disk holds once this process's pending writes are written."""
    assert result_cache.shared().flush()
    with sqlite3.connect(cache_home / "tandem" / result_cache.FILE_NAME) as db:
        return [value for (value,) in db.execute("SELECT value FROM entries WHERE kind = 'secrets'")]


def test_a_files_findings_are_kept_for_exactly_its_name_and_bytes(workspace: Path) -> None:
    scan = secret_engine.scan_file_batch(str(workspace), MAX_BYTES, None, "test", ["keys.py", "clean.py"])
    assert {entry["type"] for entry in scan.found} >= {"AWS Access Key", "Secret Keyword", "GitHub Token"}
    assert {entry["path"] for entry in scan.found} == {"keys.py"}
    assert _cached(workspace, ["keys.py", "clean.py"]) == {"keys.py": _unhashed(scan.found), "clean.py": []}
    # A caller that needs the hashes (scan_secrets, against a baseline) has the file with findings scanned again.
    assert _cached(workspace, ["keys.py", "clean.py"], hashes=True) == {"clean.py": []}
    # The clean file now holds a secret: what was kept for it no longer applies, and a new scan finds it.
    (workspace / "clean.py").write_text(CLEAN + f'aws_key = "{AWS_KEY}"\n')
    assert _cached(workspace, ["keys.py", "clean.py"]) == {"keys.py": _unhashed(scan.found)}
    rescan = secret_engine.scan_file_batch(str(workspace), MAX_BYTES, None, "test", ["clean.py"])
    assert [(entry["path"], entry["line"], entry["type"]) for entry in rescan.found] == [
        ("clean.py", 4, "AWS Access Key")
    ]
    assert _cached(workspace, ["clean.py"]) == {"clean.py": _unhashed(rescan.found)}
    # The same bytes under another name (a file's type, and a baseline's exclusions, go by its name): a miss.
    (workspace / "keys.py").rename(workspace / "keys.txt")
    assert _cached(workspace, ["keys.txt"]) == {}
    # Other settings: another identity, a miss; what they find is kept apart from what the defaults found.
    assert secret_engine._identity(LIMITED) != secret_engine._identity(None)
    assert _cached(workspace, ["clean.py"], LIMITED) == {}
    limited = secret_engine.scan_file_batch(str(workspace), MAX_BYTES, LIMITED, "test", ["clean.py"])
    assert limited.found != rescan.found
    assert _cached(workspace, ["clean.py"], LIMITED) == {"clean.py": _unhashed(limited.found)}
    assert _cached(workspace, ["clean.py"]) == {"clean.py": _unhashed(rescan.found)}


PLUGIN = """\
import re
from detect_secrets.plugins.base import RegexBasedDetector


class TandemTestDetector(RegexBasedDetector):
    secret_type = "Tandem test token"
    denylist = (re.compile(r"tandemtok_[a-z0-9]{12}"),)
"""
SCAN_IN_A_FRESH_PROCESS = """
    import json, sys
    from tandem.core import secret_engine
    for config in json.loads(sys.argv[2]):
        scan = secret_engine.scan_file_batch(sys.argv[1], 1_000_000, config, "test", sys.argv[3:])
        print(json.dumps(scan.found))
"""


def _custom_plugin(workspace: Path) -> secret_engine.Config:
    """A baseline's own plugin, loaded from a file (code that may change under the same name)."""
    plugin = workspace.parent / "tandem_test_plugin.py"
    plugin.write_text(PLUGIN)
    (workspace / "custom.py").write_text('value = "tandemtok_abcdef123456"\n')
    return {"plugins_used": [{"name": "TandemTestDetector", "path": f"file://{plugin}"}], "filters_used": []}


def test_settings_that_load_code_from_a_file_are_never_kept(workspace: Path) -> None:
    config = _custom_plugin(workspace)
    assert secret_engine._identity(config) is None
    filtered = {"plugins_used": [], "filters_used": [{"path": f"file://{workspace.parent}/filter.py::is_fine"}]}
    assert secret_engine._identity(filtered) is None
    home = workspace.parent / "cache-home"
    [found] = _run(SCAN_IN_A_FRESH_PROCESS, home, str(workspace), json.dumps([config]), "custom.py", "keys.py")
    assert [(entry["path"], entry["type"]) for entry in json.loads(found)] == [("custom.py", "Tandem test token")]
    assert not (home / "tandem" / result_cache.FILE_NAME).exists()


def test_a_baselines_own_plugin_never_reaches_what_the_defaults_keep(workspace: Path) -> None:
    config = _custom_plugin(workspace)
    home = workspace.parent / "cache-home"
    _run(SCAN_IN_A_FRESH_PROCESS, home, str(workspace), json.dumps([config, None]), "custom.py")
    assert _cached(workspace, ["custom.py"]) == {"custom.py": []}


def test_a_baselines_own_plugin_works_after_a_scan_with_the_defaults(workspace: Path) -> None:
    """The same process (a worker) scans with the defaults, then with a baseline loading its own plugin: the
    plugin is found and used (detect-secrets' table of plugin classes is not the one built for the defaults)."""
    config = _custom_plugin(workspace)
    home = workspace.parent / "cache-home"
    defaults, custom = _run(SCAN_IN_A_FRESH_PROCESS, home, str(workspace), json.dumps([None, config]), "custom.py")
    assert json.loads(defaults) == []
    assert [entry["type"] for entry in json.loads(custom)] == ["Tandem test token"]


def test_no_secret_is_kept_in_the_cache(workspace: Path) -> None:
    (workspace / "settings.yaml").write_text(f"database:\n  password: {PASSWORD}-yaml\n")
    (workspace / ".env").write_text(f"API_KEY={AWS_KEY}\nSECRET_TOKEN=abc123def456ghi789jkl012mno345\n")
    names = ["keys.py", "clean.py", "settings.yaml", ".env"]
    scan = secret_engine.scan_file_batch(str(workspace), MAX_BYTES, None, "test", names)
    assert {entry["path"] for entry in scan.found} == {"keys.py", "settings.yaml", ".env"}
    values = _stored_values(workspace.parent / "cache-home")
    assert len(values) == len(names)
    kept = "\n".join(values)
    assert "AK********" in kept  # the lines are there, masked
    for secret in (AWS_KEY, PASSWORD, GITHUB_TOKEN, "abc123def456ghi789jkl012mno345", AWS_KEY[2:]):
        assert secret not in kept
    # Nor the hashes of the secrets (unsalted SHA-1s: a weak password does not survive one).
    assert all(entry["hashed_secret"] not in kept for entry in scan.found)
    # Nor anywhere in the store's files (the write-ahead log included).
    for path in (workspace.parent / "cache-home" / "tandem").glob(f"{result_cache.FILE_NAME}*"):
        data = path.read_bytes()
        assert AWS_KEY.encode() not in data and PASSWORD.encode() not in data and GITHUB_TOKEN.encode() not in data


def test_no_secret_is_kept_when_a_line_holds_a_form_feed(workspace: Path) -> None:
    other = "AKIAQ7RT2W4XM9PL6KZB"
    (workspace / "conf.py").write_text(f'a = 1\x0cb = 2\nk1 = "{AWS_KEY}"; k2 = "{other}"\nk3 = "{AWS_KEY}"\n')
    scan = secret_engine.scan_file_batch(str(workspace), MAX_BYTES, None, "test", ["conf.py"])
    assert {entry["line"] for entry in scan.found} == {2, 3}
    assert all(AWS_KEY not in entry["redacted"] and other not in entry["redacted"] for entry in scan.found)
    assert other not in "\n".join(_stored_values(workspace.parent / "cache-home"))


def test_what_is_scanned_is_the_bytes_read_even_if_the_file_changes_meanwhile(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file swapped for a clean one and back while it is scanned (an undo and a redo, a stash and its pop): the
    scan is of the bytes read, so it finds the secret, and no clean verdict is kept for those bytes."""
    target = workspace / "keys.py"
    real = secret_engine._scan_lines

    def swapped_meanwhile(lines: list[str], filename: str) -> Any:
        target.write_text(CLEAN)  # detect-secrets, reopening the file now, would read this
        try:
            yield from real(lines, filename)
        finally:
            target.write_text(KEYS)

    monkeypatch.setattr(secret_engine, "_scan_lines", swapped_meanwhile)
    scan = secret_engine.scan_file_batch(str(workspace), MAX_BYTES, None, "test", ["keys.py"])
    assert {entry["type"] for entry in scan.found} >= {"AWS Access Key", "GitHub Token"}
    assert scan.digests["keys.py"] == secret_engine.content_digest(KEYS.encode())
    assert _cached(workspace, ["keys.py"]) == {"keys.py": _unhashed(scan.found)}


def test_a_file_gone_while_it_is_scanned_is_scanned_as_read(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file deleted right after it was read (a checkout, an editor that deletes and writes again): its bytes are
    still the ones scanned (detect-secrets' own check that the file is on disk is not asked), so its secrets are
    found, and no clean verdict is kept for bytes that hold them."""
    real = secret_engine._read_for_scan

    def read_then_gone(root: Path, name: str, max_bytes: int) -> bytes | str:
        got = real(root, name, max_bytes)
        (root / name).rename(root / f"{name}.moved")
        return got

    monkeypatch.setattr(secret_engine, "_read_for_scan", read_then_gone)
    scan = secret_engine.scan_file_batch(str(workspace), MAX_BYTES, None, "test", ["keys.py"])
    assert {entry["type"] for entry in scan.found} >= {"AWS Access Key", "GitHub Token"}
    monkeypatch.setattr(secret_engine, "_read_for_scan", real)
    (workspace / "keys.py.moved").rename(workspace / "keys.py")
    assert _cached(workspace, ["keys.py"]) == {"keys.py": _unhashed(scan.found)}


def test_a_file_that_is_not_utf8_is_scanned_as_it_is_decoded(workspace: Path) -> None:
    """detect-secrets passes over a file it cannot read as UTF-8; Tandem scans it as it reads it (its text is
    what a pack sends)."""
    (workspace / "latin.py").write_bytes(f'# caf\xe9\naws = "{AWS_KEY}"\n'.encode("latin-1"))
    scan = secret_engine.scan_file_batch(str(workspace), MAX_BYTES, None, "test", ["latin.py"])
    assert [(entry["line"], entry["type"]) for entry in scan.found] == [(2, "AWS Access Key")]


def test_filters_that_read_a_file_of_their_own_are_never_kept() -> None:
    """A word list or a gibberish model may change under the same name in the settings: not a key to keep by."""
    wordlist = {"path": "detect_secrets.filters.wordlist.should_exclude_secret", "min_length": 3, "file_name": "w"}
    model = {"path": "detect_secrets.filters.gibberish.should_exclude_secret", "limit": 3.7}
    for used in (wordlist, model):
        assert secret_engine._identity({"plugins_used": [], "filters_used": [used]}) is None
    assert secret_engine._identity(LIMITED) is not None
    # Scanning every text file (what packs and briefs ask) finds more than detect-secrets' own choice: kept apart.
    assert secret_engine._identity(None, every_text=True) != secret_engine._identity(None)


def test_a_later_process_takes_the_findings_without_detect_secrets(workspace: Path) -> None:
    home = workspace.parent / "cache-home"
    scan = secret_engine.scan_file_batch(str(workspace), MAX_BYTES, None, "test", ["keys.py", "clean.py"])
    code = """
        import json, sys
        from tandem.core import secret_engine
        identity = secret_engine._identity(None)
        digests = secret_engine._digests_of(sys.argv[1], 1_000_000, ["keys.py", "clean.py"])
        print(json.dumps(secret_engine._already_scanned(identity, digests, hashes=False), sort_keys=True))
        print("detect_secrets" in sys.modules)
    """
    known, loaded = _run(code, home, str(workspace))
    assert json.loads(known) == {"keys.py": _unhashed(scan.found), "clean.py": []}
    assert loaded == "False"


@pytest.mark.anyio
async def test_scanning_again_takes_the_kept_findings(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``scan_files`` (what the tools call) scans a file once; unchanged, it is not scanned again; changed, it is."""
    monkeypatch.chdir(workspace)  # small and here: scanned in this process
    monkeypatch.setattr(worker_processes, "started", lambda: False)
    config = load_settings(workspace, toolsets=["code"])
    ctx = CallContext(workspace=config.workspace, settings=config)
    scanned: list[list[str]] = []
    real = secret_engine.scan_file_batch

    def counting(workspace: str, max_bytes: int, config: Any, source: str, files: list[str], *more: Any) -> Any:
        scanned.append(list(files))
        return real(workspace, max_bytes, config, source, files, *more)

    monkeypatch.setattr(secret_engine, "scan_file_batch", counting)
    first = await secret_engine.scan_files(ctx, None, "test", ["keys.py", "clean.py"])
    again = await secret_engine.scan_files(ctx, None, "test", ["keys.py", "clean.py"], hashes=False)
    assert scanned == [["keys.py", "clean.py"]]
    assert again.found == _unhashed(first.found) and again.count == first.count == 2
    assert {entry["path"] for entry in first.found} == {"keys.py"}
    # The hashes are never kept: a caller that needs them has the file with findings (only) scanned again.
    hashed = await secret_engine.scan_files(ctx, None, "test", ["keys.py", "clean.py"])
    assert scanned == [["keys.py", "clean.py"], ["keys.py"]] and hashed.found == first.found
    (workspace / "clean.py").write_text(CLEAN + f'password = "{PASSWORD}"\n')
    changed = await secret_engine.scan_files(ctx, None, "test", ["keys.py", "clean.py"], hashes=False)
    assert scanned == [["keys.py", "clean.py"], ["keys.py"], ["clean.py"]]
    assert {entry["path"] for entry in changed.found} == {"keys.py", "clean.py"}


def test_a_repeated_pack_builds_no_encoder_even_with_a_file_left_out(tmp_path: Path) -> None:
    """``tandem pack`` counts the files while they are scanned, those the scan then leaves out included; their
    counts are kept too, or every later pack would build an encoder for them. (On one CPU, so that the counting
    is done in the command's own process, where the test sees the encoder built; with worker processes they
    count, and hand the counts back to be kept the same way.)"""
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    for n in range(5):
        (workspace / "src" / f"m{n}.py").write_text(f"VALUE = {n}  # {tmp_path.name}\n")
    (workspace / "src" / "creds.py").write_text('password = "hunter2-is-not-a-good-one"\n')
    code = """
        import os, sys
        from tandem.core import tokens
        built, marked = tokens.counter, sys.argv[1]
        def counted(*args):
            with open(marked, "a") as marks:
                marks.write("encoder built\\n")
            return built(*args)
        tokens.counter = counted
        os.cpu_count = lambda: 1
        os.chdir(sys.argv[2])
        sys.argv = ["tandem", "pack", "-o", sys.argv[3]]
        from tandem.__main__ import main
        main()
    """
    marks = tmp_path / "marks"
    home = tmp_path / "cache-home"
    out = str(tmp_path / "out.xml")  # not in the workspace, or the second pack would pack the first
    first = _run(code, home, str(marks), str(workspace), out)
    assert any("Packed 5 files" in line for line in first)
    assert marks.read_text().count("encoder built") >= 1
    marks.unlink()
    again = _run(code, home, str(marks), str(workspace), out)
    assert any("Packed 5 files" in line for line in again), again
    assert not marks.exists()  # everything was counted before: no encoder
