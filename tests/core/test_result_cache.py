"""The result cache keeps values between processes in one SQLite file in the user's cache directory: what is stored
is read back (by this process, a later one, a forked child), the store stays bounded and private, and every failure
(a damaged file, a cache directory that cannot exist, the cache turned off) is a miss, never an error."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tandem.core import result_cache
from tandem.core.result_cache import ResultCache


def _key(number: int) -> bytes:
    return number.to_bytes(16, "big")


def _run(code: str, cache_home: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "XDG_CACHE_HOME": str(cache_home), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's cache directory moved to a fresh one (``shared()`` follows ``XDG_CACHE_HOME``)."""
    home = tmp_path / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv("TANDEM_RESULT_CACHE", raising=False)
    return home


def test_values_are_read_back_as_stored(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    cache = ResultCache(path)
    cache.put_many("counts", {_key(1): 7, _key(2): 123_456_789_012})
    cache.put_many("texts", {_key(1): "findings: é 🚀", _key(3): ""})
    assert path.is_file()
    assert cache.get_many("counts", [_key(1), _key(2)]) == {_key(1): 7, _key(2): 123_456_789_012}
    # Kinds are apart: the same key under another kind is another entry.
    assert cache.get_many("texts", [_key(1), _key(3)]) == {_key(1): "findings: é 🚀", _key(3): ""}
    # Keys that were never stored are simply absent; asking twice for one key is asking once.
    assert cache.get_many("counts", [_key(9), _key(2), _key(2), _key(10)]) == {_key(2): 123_456_789_012}
    assert cache.get_many("counts", []) == {}
    assert cache.get_many("other", [_key(1)]) == {}
    # put replaces what the key held.
    cache.put_many("counts", {_key(1): 8})
    assert cache.get_many("counts", [_key(1)]) == {_key(1): 8}
    # A fresh cache on the same file (a later process) reads the same entries.
    assert ResultCache(path).get_many("counts", [_key(1), _key(2)]) == {_key(1): 8, _key(2): 123_456_789_012}


def test_more_keys_than_one_query_binds_are_all_found(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "results.sqlite")
    stored = {_key(i): i for i in range(0, 5000, 2)}
    cache.put_many("counts", stored)
    assert cache.get_many("counts", [_key(i) for i in range(5000)]) == stored


def test_entries_survive_into_another_process(tmp_path: Path) -> None:
    _run(
        """
        from tandem.core import result_cache
        result_cache.shared().put_many("counts", {b"alpha": 41, b"beta": 42})
        result_cache.shared().put_many("texts", {b"alpha": "kept"})
        """,
        tmp_path,
    )
    assert (tmp_path / "tandem" / result_cache.FILE_NAME).is_file()
    out = _run(
        """
        from tandem.core import result_cache
        cache = result_cache.shared()
        print(sorted(cache.get_many("counts", [b"alpha", b"beta", b"gamma"]).items()))
        print(sorted(cache.get_many("texts", [b"alpha", b"beta"]).items()))
        """,
        tmp_path,
    )
    assert out.splitlines() == ["[(b'alpha', 41), (b'beta', 42)]", "[(b'alpha', 'kept')]"]


def test_processes_writing_at_once_store_only_right_values(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from tandem.core import result_cache
        me = int(sys.argv[1])
        for round in range(40):
            result_cache.shared().put_many("counts", {f"{me}-{round}-{i}".encode(): me * 1000 + i for i in range(25)})
        """
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    writers = [
        subprocess.Popen([sys.executable, "-c", code, str(me)], env=env, stderr=subprocess.PIPE, text=True)
        for me in range(4)
    ]
    for writer in writers:
        _, errors = writer.communicate(timeout=60)
        assert writer.returncode == 0, errors
    cache = ResultCache(tmp_path / "tandem" / result_cache.FILE_NAME)
    asked = [f"{me}-{round}-{i}".encode() for me in range(4) for round in range(40) for i in range(25)]
    found = cache.get_many("counts", asked)
    # An entry is right or absent; a busy store may miss some writes, but most land.
    assert all(value == int(key.split(b"-")[0]) * 1000 + int(key.split(b"-")[2]) for key, value in found.items())
    assert len(found) > len(asked) // 2


def test_a_damaged_file_is_a_miss_and_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    path.write_bytes(b"this is not a database, whatever it once was\n" * 200)
    cache = ResultCache(path)
    assert cache.get_many("counts", [_key(1)]) == {}
    cache.put_many("counts", {_key(1): 1})  # a store it gave up on takes nothing, and says nothing
    assert cache.get_many("counts", [_key(1)]) == {}
    assert not path.exists()
    # The next process (a fresh cache on the same path) starts an empty store that works.
    again = ResultCache(path)
    again.put_many("counts", {_key(2): 2})
    assert again.get_many("counts", [_key(1), _key(2)]) == {_key(2): 2}


def test_a_store_damaged_inside_is_a_miss_and_is_removed(tmp_path: Path) -> None:
    """A real store whose pages were overwritten (the header intact): its queries fail as 'malformed'."""
    path = tmp_path / "results.sqlite"
    _run(
        f"""
        from pathlib import Path
        from tandem.core.result_cache import ResultCache
        ResultCache(Path({str(path)!r})).put_many("texts", {{i.to_bytes(16, "big"): "v" * 50 for i in range(3000)}})
        """,
        tmp_path,
    )
    data = bytearray(path.read_bytes())
    assert len(data) > 100_000 and data.startswith(b"SQLite format 3\0")
    for page in range(4096, len(data), 4096):
        data[page : page + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))
    cache = ResultCache(path)
    assert cache.get_many("texts", [_key(i) for i in range(3000)]) == {}
    assert not path.exists()
    fresh = ResultCache(path)
    fresh.put_many("texts", {_key(1): "back"})
    assert fresh.get_many("texts", [_key(1)]) == {_key(1): "back"}


def test_a_cache_directory_that_cannot_exist_is_a_miss(cache_home: Path) -> None:
    cache_home.parent.mkdir(parents=True, exist_ok=True)
    cache_home.write_text("a regular file where the cache directory's parent should be\n")
    cache = result_cache.shared()
    cache.put_many("counts", {_key(1): 1})
    assert cache.get_many("counts", [_key(1)]) == {}
    assert cache_home.read_text().startswith("a regular file")


def test_a_directory_where_the_file_should_be_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    path.mkdir()
    cache = ResultCache(path)
    cache.put_many("counts", {_key(1): 1})
    assert cache.get_many("counts", [_key(1)]) == {}
    assert path.is_dir()


@pytest.mark.parametrize("setting", ["off", "OFF", "0", "false", "no"])
def test_the_cache_can_be_turned_off(cache_home: Path, monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv("TANDEM_RESULT_CACHE", setting)
    result_cache.shared().put_many("counts", {_key(1): 1})
    assert result_cache.shared().get_many("counts", [_key(1)]) == {}
    assert not (cache_home / "tandem" / result_cache.FILE_NAME).exists()
    # Turned on again, the same directory stores.
    monkeypatch.setenv("TANDEM_RESULT_CACHE", "on")
    result_cache.shared().put_many("counts", {_key(1): 1})
    assert result_cache.shared().get_many("counts", [_key(1)]) == {_key(1): 1}


def test_a_process_with_the_cache_off_leaves_no_store(tmp_path: Path) -> None:
    out = _run(
        """
        from tandem.core import tokens
        print(tokens.count_tokens("hello world, counted with the result cache off"))
        """,
        tmp_path,
        TANDEM_RESULT_CACHE="off",
    )
    assert int(out) > 0
    assert not (tmp_path / "tandem" / result_cache.FILE_NAME).exists()


def test_the_store_keeps_the_newest_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(result_cache, "MAX_ENTRIES", 5)
    cache = ResultCache(tmp_path / "results.sqlite")
    for i in range(8):
        cache.put_many("counts" if i % 2 else "texts", {_key(i): i})
    every = [_key(i) for i in range(8)]
    kept = cache.get_many("counts", every) | cache.get_many("texts", every)
    assert kept == {_key(i): i for i in range(3, 8)}  # the limit spans kinds
    # A key stored again is new again: it outlives those stored before it.
    cache.put_many("counts", {_key(3): 30})
    cache.put_many("counts", {_key(100 + i): i for i in range(3)})
    kept = cache.get_many("counts", [*every, *(_key(100 + i) for i in range(3))])
    kept |= cache.get_many("texts", every)
    assert kept == {_key(7): 7, _key(3): 30, _key(100): 0, _key(101): 1, _key(102): 2}
    # One put larger than the limit keeps its last entries.
    cache.put_many("counts", {_key(200 + i): i for i in range(12)})
    assert cache.get_many("counts", [_key(200 + i) for i in range(12)]) == {_key(200 + i): i for i in range(7, 12)}
    with sqlite3.connect(cache.path) as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 5


def test_the_store_is_the_users_alone(cache_home: Path) -> None:
    cache = result_cache.shared()
    cache.put_many("counts", {_key(1): 1})
    directory = cache_home / "tandem"
    assert cache.path == directory / result_cache.FILE_NAME
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    # SQLite's companion files (while a connection is open) hold entries too: they are as private.
    companions = [path for path in directory.iterdir() if path != cache.path]
    assert companions, "a WAL store has its -wal and -shm files while open"
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in companions} == dict.fromkeys(
        (path.name for path in companions), 0o600
    )


def test_a_directory_an_older_tandem_made_open_is_made_private(cache_home: Path) -> None:
    directory = cache_home / "tandem"
    directory.mkdir(parents=True)
    directory.chmod(0o755)  # as the vocabulary cache of earlier versions left it
    result_cache.shared().put_many("kind", {_key(1): 1})
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    (directory / "vocabulary").unlink(missing_ok=True)
    directory.chmod(0o755)
    result_cache.write_checked(directory / "vocabulary", b"payload")  # the vocabulary cache makes it private too
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert result_cache.read_checked(directory / "vocabulary") == b"payload"
    stored = (directory / "vocabulary").read_bytes()
    (directory / "vocabulary").write_bytes(stored[:-1] + b"X")  # damaged: read as absent, never as other bytes
    assert result_cache.read_checked(directory / "vocabulary") is None
    assert result_cache.read_checked(directory / "absent") is None


def test_a_value_it_cannot_store_loses_nothing(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "results.sqlite")
    cache.put_many("kind", {_key(1): 1})
    cache.put_many("kind", {_key(2): {"not": "storable"}})  # type: ignore[dict-item]
    assert cache.get_many("kind", [_key(1), _key(2)]) == {_key(1): 1}
    # Nor do values it cannot store lose the others stored with them.
    cache.put_many("kind", {_key(4): 2**63, _key(5): 5, _key(6): None, _key(7): -(2**63)})  # type: ignore[dict-item]
    assert cache.get_many("kind", [_key(4), _key(5), _key(6), _key(7)]) == {_key(5): 5, _key(7): -(2**63)}
    cache.put_many("kind", {_key(3): 3})
    assert cache.get_many("kind", [_key(3)]) == {_key(3): 3}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_uses_its_own_connection(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "results.sqlite")
    cache.put_many("counts", {_key(1): 1})
    inherited = cache._db
    assert inherited is not None
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 70
        try:
            seen = cache.get_many("counts", [_key(1)])
            cache.put_many("counts", {_key(2): 2})
            code = 0 if seen == {_key(1): 1} and cache._db is not inherited else 71
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent goes on with its own connection, and sees what the child stored.
    assert cache._db is inherited
    assert cache.get_many("counts", [_key(1), _key(2)]) == {_key(1): 1, _key(2): 2}
    cache.put_many("counts", {_key(3): 3})
    assert ResultCache(cache.path).get_many("counts", [_key(1), _key(2), _key(3)]) == {
        _key(1): 1,
        _key(2): 2,
        _key(3): 3,
    }
    with sqlite3.connect(cache.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_writes_left_to_the_writer_are_read_back_at_once(tmp_path: Path) -> None:
    """``put_later`` returns before the disk is written; a read in the process waits for what is pending."""
    cache = ResultCache(tmp_path / "results.sqlite")
    for number in range(50):
        cache.put_later("counts", {_key(number): number})
    cache.put_later("counts", {_key(0): 1000})  # later writes of a key win, as with put_many
    cache.put_later("counts", {})
    assert cache.get_many("counts", [_key(n) for n in range(50)]) == {_key(0): 1000} | {
        _key(n): n for n in range(1, 50)
    }
    # Written to the file, not only held in memory: another connection sees them.
    assert cache.flush()
    assert ResultCache(cache.path).get_many("counts", [_key(7)]) == {_key(7): 7}
    assert cache._writer is not None and cache._writer.name == "tandem-result-cache" and cache._writer.daemon


def test_writes_left_to_the_writer_reach_the_next_process(tmp_path: Path) -> None:
    """A process that ends normally writes what is pending at exit; one that ends with ``os._exit`` (as ``tandem
    pack`` does) flushes first."""
    _run(
        """
        from tandem.core import result_cache
        result_cache.shared().put_later("counts", {b"alpha": 41})
        """,
        tmp_path,
    )
    _run(
        """
        import os, sys
        from tandem.core import result_cache
        result_cache.shared().put_later("counts", {b"beta": 42})
        result_cache.flush_all()
        sys.stdout.flush()
        os._exit(0)
        """,
        tmp_path,
    )
    out = _run(
        """
        from tandem.core import result_cache
        print(sorted(result_cache.shared().get_many("counts", [b"alpha", b"beta"]).items()))
        """,
        tmp_path,
    )
    assert out.strip() == "[(b'alpha', 41), (b'beta', 42)]"


def test_pending_writes_that_fail_lose_nothing_else(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "results.sqlite")
    cache.put_later("kind", {_key(1): {"not": "storable"}})  # type: ignore[dict-item]
    cache.put_later("kind", {_key(2): 2})
    assert cache.get_many("kind", [_key(1), _key(2)]) == {_key(2): 2}
    cache.put_later("kind", {_key(3): 3})  # the writer goes on after a failed batch
    assert cache.get_many("kind", [_key(3)]) == {_key(3): 3}


def test_the_cache_turned_off_keeps_nothing_left_to_the_writer(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_RESULT_CACHE", "off")
    cache = result_cache.shared()
    cache.put_later("counts", {_key(1): 1})
    assert cache.flush() and cache.get_many("counts", [_key(1)]) == {}
    assert not cache_home.exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_writes_are_pending_starts_with_none(tmp_path: Path, cache_home: Path) -> None:
    """The child neither waits on the parent's writer (its thread does not exist there, its condition may have
    been held when the process forked) nor writes the parent's entries twice; it writes its own."""
    cache = result_cache.shared()
    with cache._queue:  # held, as the parent's writer may hold it at the moment of the fork
        cache._pending.append(("counts", {_key(1): 1}))
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                cache.put_later("counts", {_key(2): 2})
                seen = cache.get_many("counts", [_key(1), _key(2)])
                code = 0 if seen == {_key(2): 2} else 71
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        cache._pending.clear()
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.get_many("counts", [_key(1), _key(2)]) == {_key(2): 2}
