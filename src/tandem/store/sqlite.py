"""One SQLite database file: WAL, durable commits, schema versions, an integrity check at open, rotating backups.

Every write goes through ``transaction()``: a committed transaction is on disk (``synchronous=FULL``) when it
returns, so a process killed right after a write loses nothing. A file that fails its integrity check at open is
moved aside and the newest backup that passes is restored (or a fresh database is made); ``recovery`` says what
happened, for health reports and the log.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("tandem.store")

BUSY_TIMEOUT_MS = 5000


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says which file and why."""


class Database:
    """A SQLite file with a schema given as an ordered list of migrations (``user_version`` counts them)."""

    def __init__(self, path: Path, migrations: Sequence[str], *, backups: int = 3) -> None:
        self.path = path
        self.migrations = list(migrations)
        self.backups = backups
        self.recovery: str | None = None
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None

    # -- opening -----------------------------------------------------------------------------------------------

    def open(self) -> Database:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self._intact(self.path):
            self._recover()
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, cached_statements=256)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.row_factory = sqlite3.Row
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from None
        self._conn = conn
        self._migrate()
        return self

    @staticmethod
    def _intact(path: Path) -> bool:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                rows = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError:
            return False
        return rows == [("ok",)]

    def _recover(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.replace(Path(f"{aside}{suffix}"))
        for backup in self.backup_files():
            if self._intact(backup):
                with (
                    contextlib.closing(sqlite3.connect(backup)) as source,
                    contextlib.closing(sqlite3.connect(self.path)) as target,
                ):
                    source.backup(target)
                self.recovery = (
                    f"{self.path.name} failed its integrity check; moved to {aside.name}, restored {backup.name}"
                )
                break
        else:
            self.recovery = f"{self.path.name} failed its integrity check; moved to {aside.name}, started empty"
        logger.error("%s", self.recovery)

    def _migrate(self) -> None:
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(self.migrations):
                raise StoreError(
                    f"{self.path}: schema version {version} is newer than this Tandem knows ({len(self.migrations)})"
                )
            for number, script in enumerate(self.migrations[version:], start=version + 1):
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    # -- use ---------------------------------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the database is closed")
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (and on disk) when the block ends, rolled back if it raises."""
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.conn.execute(sql, parameters).fetchall()

    def size_bytes(self) -> int:
        return sum(Path(f"{self.path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{self.path}{s}").exists())

    def compact(self) -> None:
        """Give the space of deleted rows back to the file system."""
        with self._lock:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.execute("VACUUM")

    # -- backups -----------------------------------------------------------------------------------------------

    @property
    def backup_dir(self) -> Path:
        return self.path.parent / "backups"

    def backup_files(self) -> list[Path]:
        """Backups of this database, newest first."""
        if not self.backup_dir.is_dir():
            return []
        return sorted(self.backup_dir.glob(f"{self.path.stem}-*.db"), reverse=True)

    def backup(self) -> Path:
        """Copy the database (consistently, while in use) to a new backup; keep the newest ``backups`` of them."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        target = self.backup_dir / f"{self.path.stem}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}.db"
        with self._lock, contextlib.closing(sqlite3.connect(target)) as out:
            self.conn.backup(out)
        for old in self.backup_files()[self.backups :]:
            old.unlink(missing_ok=True)
        return target

    def last_backup_age_s(self) -> float | None:
        files = self.backup_files()
        return time.time() - files[0].stat().st_mtime if files else None

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None


def _statements(script: str) -> list[str]:
    """The statements of a migration script (no statement of ours holds a ';' inside a literal)."""
    return [part.strip() for part in script.split(";") if part.strip()]
