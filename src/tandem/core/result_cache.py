"""Results kept between processes: a key -> value store in the user's cache directory, for values that are a pure
function of their key (tiktoken's count of a text; detect-secrets' findings in a file's bytes under given settings).

A second ``tandem pack`` of a codebase that barely changed, or a server restarted on it, finds most of its counts
and scan verdicts here instead of computing them again. Keys are digests of everything the value depends on, so an
entry can only ever be right or absent: nothing is invalidated, old entries are dropped when the store outgrows
``MAX_ENTRIES``.

SQLite in WAL mode, so processes share it safely and a crash loses at most the entries being written. Callers that
must not wait for the disk hand their entries to a writer thread (``put_later``): reads in the process wait for
them, and the process writes what is pending when it exits (a process killed meanwhile loses them: only work is
lost, never a right answer). The cache is
the user's own (a directory only they can read, beside the parsed vocabulary), never the workspace's: a repository
cannot ship entries that would lie about its files. Every failure is a miss: a store that cannot be opened, read or
written (a read-only home, a full disk, a damaged file) makes a cache that remembers nothing, and a damaged file is
replaced by an empty one. ``TANDEM_RESULT_CACHE=off`` turns it off.

Beside it, files of what is only slow to build (``write_checked`` / ``read_checked``: the parsed vocabulary, the
secret scan's compiled regex sets), each checked against its digest when read.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

FILE_NAME = "results.sqlite"
MAX_ENTRIES = 500_000
"""Entries kept (across kinds); past that, the oldest are dropped. An entry is about 60 bytes plus its value."""
BUSY_TIMEOUT_S = 0.05
"""How long a write waits for another process's before it is dropped (reads never wait, in WAL mode): a cache
must never stall the work it serves."""
FLUSH_TIMEOUT_S = 10.0
"""How long a read, or a process's exit, waits for this process's pending writes."""
_QUERY_KEYS = 900
"""Keys looked up in one query (SQLite's oldest limit on bound parameters is 999)."""
Value = int | str | bytes


def cache_dir() -> Path:
    """Where Tandem keeps what it can compute again: ``$XDG_CACHE_HOME/tandem``, else ``~/.cache/tandem``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tandem"


def private_dir(path: Path | None = None) -> Path:
    """``path`` (``cache_dir()`` by default), created if need be, readable by the user alone (also when an older
    Tandem made it)."""
    path = path or cache_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # not ours to change: it is used as it is
        os.chmod(path, 0o700)
    return path


def write_checked(path: Path, payload: bytes) -> None:
    """Keep ``payload`` in ``path`` (in the cache directory) behind its sha256, written atomically; a cache that
    cannot be written (a read-only home) is simply not kept."""
    try:
        private_dir(path.parent)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".tmp-") as handle:
            handle.write(hashlib.sha256(payload).hexdigest().encode() + payload)
        os.replace(handle.name, path)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(handle.name)


def read_checked(path: Path) -> bytes | None:
    """What ``write_checked`` kept in ``path``; ``None`` when there is none or it is damaged."""
    try:
        stored = path.read_bytes()
    except OSError:
        return None
    digest, payload = stored[:64], stored[64:]
    return payload if hashlib.sha256(payload).hexdigest().encode() == digest else None


def enabled() -> bool:
    return os.environ.get("TANDEM_RESULT_CACHE", "on").strip().lower() not in ("off", "0", "false", "no")


class ResultCache:
    """One SQLite file of ``(kind, key) -> value`` entries; thread-safe, and safe across ``fork`` (a child opens
    its own connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._broken = False
        self._forked()

    def _forked(self) -> None:
        """A forked child starts with no writer and nothing pending (the parent writes what it had), and with a
        condition of its own: the parent's writer may have held the old one when it forked."""
        self._queue = threading.Condition()
        self._pending: list[tuple[str, dict[bytes, Value]]] = []
        self._writing = False
        self._writer: threading.Thread | None = None
        self._writer_pid = 0

    def get_many(self, kind: str, keys: Iterable[bytes]) -> dict[bytes, Value]:
        """The stored values of those of ``keys`` that are stored (after this process's writes still pending)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[bytes, Value] = {}
        if not wanted:
            return found
        self.flush()
        with self._lock:
            db = self._connection()
            if db is None:
                return found
            try:
                for start in range(0, len(wanted), _QUERY_KEYS):
                    chunk = wanted[start : start + _QUERY_KEYS]
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT key, value FROM entries WHERE kind = ? AND key IN ({marks})"
                    found.update(db.execute(query, [kind, *chunk]).fetchall())
            except sqlite3.Error as exc:
                self._failed(exc)
        return found

    def put_many(self, kind: str, items: Mapping[bytes, Value]) -> None:
        """Store ``items`` (replacing what the same keys held), then drop the oldest entries past the limit. A value
        SQLite cannot hold (not an int of 64 bits, a str or bytes) is not kept; the others are."""
        rows = [(kind, key, value) for key, value in items.items() if _storable(value)]
        if not rows:
            return
        with self._lock:
            db = self._connection()
            if db is None:
                return
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO entries (kind, key, value) VALUES (?, ?, ?)", rows)
                    newest = db.execute("SELECT max(rowid) FROM entries").fetchone()[0] or 0
                    db.execute("DELETE FROM entries WHERE rowid <= ?", (newest - MAX_ENTRIES,))
            except sqlite3.Error as exc:
                self._failed(exc)

    def put_later(self, kind: str, items: Mapping[bytes, Value]) -> None:
        """``put_many`` in this process's writer thread: the caller does not wait for the disk (a pack's first
        call would, some 50 ms). Reads in this process wait for the writes before them; the process flushes what
        is pending when it exits (``flush_all``, run at exit)."""
        if not items:
            return
        with self._queue:
            self._pending.append((kind, dict(items)))
            if self._writer is None or self._writer_pid != os.getpid() or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_pending, name="tandem-result-cache", daemon=True)
                self._writer_pid = os.getpid()
                self._writer.start()
            self._queue.notify_all()

    def flush(self, timeout: float | None = FLUSH_TIMEOUT_S) -> bool:
        """Wait until this process's pending writes are written (at most ``timeout`` seconds); whether they are."""
        with self._queue:
            return self._queue.wait_for(lambda: not self._pending and not self._writing, timeout)

    def _write_pending(self) -> None:
        while True:
            with self._queue:
                self._queue.wait_for(lambda: bool(self._pending))
                batch, self._pending, self._writing = self._pending, [], True
            try:
                merged: dict[str, dict[bytes, Value]] = {}
                for kind, items in batch:
                    merged.setdefault(kind, {}).update(items)
                for kind, items in merged.items():
                    self.put_many(kind, items)
            except Exception:  # a cache only saves work: what it cannot write is not kept
                log.debug("result cache %s: pending writes dropped", self.path, exc_info=True)
            finally:
                with self._queue:
                    self._writing = False
                    self._queue.notify_all()

    def _connection(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        if self._db is not None and self._pid == os.getpid():
            return self._db
        self._db = None  # a connection inherited through fork is the parent's: never used here
        try:
            private_dir(self.path.parent)
            fresh = not self.path.exists()
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            if fresh:
                os.chmod(self.path, 0o600)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries (kind TEXT NOT NULL, key BLOB NOT NULL, value NOT NULL, "
                "UNIQUE (kind, key))"
            )
        except sqlite3.DatabaseError as exc:
            self._failed(exc)
            return None
        except OSError as exc:
            log.debug("result cache %s not available: %s", self.path, exc)
            self._broken = True
            return None
        self._db, self._pid = db, os.getpid()
        return db

    def _failed(self, exc: sqlite3.Error) -> None:
        """A store that is busy or full misses for now; a damaged one is removed (the next process starts an empty
        one) and this process goes on without it."""
        log.debug("result cache %s: %s", self.path, exc)
        damaged = getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or any(
            sign in str(exc) for sign in ("malformed", "not a database")
        )
        if not damaged:  # busy, full, or a value it cannot store: this call misses, the store stays
            return
        self._broken = True
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{self.path}{suffix}")


class _Off(ResultCache):
    def get_many(self, kind: str, keys: Iterable[bytes]) -> dict[bytes, Value]:
        return {}

    def put_many(self, kind: str, items: Mapping[bytes, Value]) -> None:
        return None

    def put_later(self, kind: str, items: Mapping[bytes, Value]) -> None:
        return None


def _storable(value: object) -> bool:
    if isinstance(value, int):
        return _INT_MIN <= value <= _INT_MAX
    return isinstance(value, (str, bytes))


_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_shared: dict[Path, ResultCache] = {}
_sharing = threading.Lock()


def flush_all(timeout: float | None = FLUSH_TIMEOUT_S) -> None:
    """Write what every cache of this process has pending (a process that ends with ``os._exit`` calls it first;
    others run it at exit)."""
    with _sharing:
        caches = list(_shared.values())
    for cache in caches:
        cache.flush(timeout)


def _after_fork_in_child() -> None:
    for cache in _shared.values():
        cache._forked()


atexit.register(flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def shared() -> ResultCache:
    """The process's cache in the user's cache directory (one per directory, so a changed ``XDG_CACHE_HOME`` is
    honoured); a cache that stores nothing when ``TANDEM_RESULT_CACHE`` is off."""
    path = cache_dir() / FILE_NAME
    if not enabled():
        return _Off(path)
    with _sharing:
        cache = _shared.get(path)
        if cache is None:
            cache = _shared[path] = ResultCache(path)
        return cache
