"""The SQLite store on real files: the seed's schema, WAL, recovery from a corrupt file, backups, log pruning."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tandem.store.catalog import CatalogStore, QueryLogRow
from tandem.store.sqlite import Database


def test_schema_indexes_and_journal(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path / "catalog.db").open()
    store.close()
    with sqlite3.connect(tmp_path / "catalog.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert {"agent_queries", "orchestration_patterns", "decision_history"} <= tables
    assert {
        "idx_agent_queries_timestamp",
        "idx_agent_queries_capability",
        "idx_patterns_goal",
        "idx_decision_history_timestamp",
        "idx_decision_history_result",
    } <= indexes
    assert mode == "wal"
    assert version == 2


def test_decisions_update_counts_and_averages_and_prune(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path / "c.db", prune_below=0.3, prune_after_uses=5).open()
    pattern = store.save_pattern(
        "add oauth", ["security-auditor", "backend-developer"], {"backend-developer": ["security-auditor"]}
    )
    assert store.save_pattern("add oauth", ["security-auditor", "backend-developer"]).id == pattern.id

    def record(task: str, result: str, ms: int) -> object:
        return store.record_decision(
            task_id=task,
            task_description="add oauth",
            agents_used=pattern.agent_sequence,
            result=result,  # type: ignore[arg-type]
            duration_ms=ms,
            tokens_saved=100,
            pattern_id=pattern.id,
        )

    first = record("t1", "success", 1000)
    second = record("t2", "failure", 3000)
    assert second.pattern.success_count == 1 and second.pattern.failure_count == 1  # type: ignore[attr-defined]
    assert second.pattern.avg_duration_ms == 2000  # type: ignore[attr-defined]
    assert first.duplicate is False
    again = record("t2", "failure", 3000)
    assert again.duplicate is True and again.pattern.failure_count == 1  # type: ignore[attr-defined]
    record("t3", "failure", 10)
    record("t4", "partial", 10)  # partial counts as a failure
    last = record("t5", "failure", 10)  # 1 of 5 succeeded: 0.2 < 0.3
    assert last.pruned is True  # type: ignore[attr-defined]
    assert store.pattern(pattern.id) is None
    assert store.decision_count() == 5
    store.close()


def test_a_corrupt_file_is_restored_from_the_newest_backup(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path / "c.db").open()
    kept = store.save_pattern("deploy the api", ["devops"])
    store.db.backup()
    store.save_pattern("not in the backup", ["x"])
    store.close()
    raw = bytearray((tmp_path / "c.db").read_bytes())
    raw[100:4096] = b"\xff" * (4096 - 100)  # the first page past the header: the schema is gone
    (tmp_path / "c.db").write_bytes(bytes(raw))

    reopened = CatalogStore(tmp_path / "c.db").open()
    assert reopened.db.recovery is not None and "restored" in reopened.db.recovery
    assert [p.id for p in reopened.patterns()] == [kept.id]
    assert list(tmp_path.glob("c.db.corrupt-*"))
    reopened.close()


def test_a_corrupt_file_without_backups_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "c.db").write_bytes(b"this is not a database" * 100)
    store = CatalogStore(tmp_path / "c.db").open()
    assert store.db.recovery is not None and "started empty" in store.db.recovery
    assert store.patterns() == []
    store.close()


def test_backups_rotate(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.db", ["CREATE TABLE t (x)"], backups=2).open()
    made = [db.backup() for _ in range(4)]
    assert db.backup_files() == sorted(made[-2:], reverse=True)
    assert db.last_backup_age_s() is not None
    db.close()


def test_the_query_log_is_pruned_past_its_size_limit(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path / "c.db", max_bytes=200 * 1024).open()
    row = QueryLogRow("react", None, "x" * 400, ["react-specialist"], False, 1.0)
    for _ in range(20):
        store.log_queries([row] * 100)
    assert store.db.size_bytes() <= 200 * 1024
    assert 0 < store.query_log_count() < 2000
    store.close()
