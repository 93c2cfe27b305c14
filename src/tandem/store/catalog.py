"""The catalog's tables: the query log, orchestration patterns and decision history (the seed's schema).

Patterns and decisions are written in one transaction each and are on disk when the call returns; the query log is
written in batches (it is a log, not state) and pruned from the oldest rows when the file passes its size limit.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tandem.store.sqlite import Database

Outcome = Literal["success", "failure", "partial"]

SCHEMA = [
    """
    CREATE TABLE agent_queries (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      timestamp DATETIME DEFAULT CURRENT_TIMESTAMP,
      capability TEXT,
      role TEXT,
      context TEXT,
      agents_returned TEXT,
      cache_hit INTEGER,
      duration_ms INTEGER
    );
    CREATE INDEX idx_agent_queries_timestamp ON agent_queries(timestamp);
    CREATE INDEX idx_agent_queries_capability ON agent_queries(capability);
    CREATE TABLE orchestration_patterns (
      id TEXT PRIMARY KEY,
      goal TEXT NOT NULL,
      agent_sequence TEXT NOT NULL,
      dependencies TEXT,
      parallel_groups TEXT,
      success_count INTEGER DEFAULT 0,
      failure_count INTEGER DEFAULT 0,
      avg_duration_ms INTEGER DEFAULT 0,
      avg_tokens_saved INTEGER DEFAULT 0,
      created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
      updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
    );
    CREATE INDEX idx_patterns_goal ON orchestration_patterns(goal);
    CREATE TABLE decision_history (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      task_id TEXT UNIQUE NOT NULL,
      task_description TEXT NOT NULL,
      agents_used TEXT NOT NULL,
      result TEXT NOT NULL,
      duration_ms INTEGER,
      tokens_saved INTEGER,
      timestamp DATETIME DEFAULT CURRENT_TIMESTAMP
    );
    CREATE INDEX idx_decision_history_timestamp ON decision_history(timestamp);
    CREATE INDEX idx_decision_history_result ON decision_history(result)
    """,
    # Which pattern a decision counted towards, so a retried cacheDecision is not counted twice.
    "ALTER TABLE decision_history ADD COLUMN pattern_id TEXT",
]


@dataclass
class Pattern:
    id: str
    goal: str
    agent_sequence: list[str]
    dependencies: dict[str, list[str]] = field(default_factory=dict)
    parallel_groups: list[list[str]] = field(default_factory=list)
    success_count: int = 0
    failure_count: int = 0
    avg_duration_ms: int = 0
    avg_tokens_saved: int = 0
    created_at: str = ""
    updated_at: str = ""

    @property
    def uses(self) -> int:
        return self.success_count + self.failure_count

    @property
    def success_rate(self) -> float:
        """Share of recorded uses that succeeded; a pattern nobody has reported on yet counts as 1.0."""
        return self.success_count / self.uses if self.uses else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "goal": self.goal,
            "agent_sequence": self.agent_sequence,
            "dependencies": self.dependencies,
            "parallel_groups": self.parallel_groups,
            "success_count": self.success_count,
            "failure_count": self.failure_count,
            "avg_duration_ms": self.avg_duration_ms,
            "avg_tokens_saved": self.avg_tokens_saved,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class QueryLogRow:
    capability: str | None
    role: str | None
    context: str | None
    agents_returned: list[str]
    cache_hit: bool
    duration_ms: float


@dataclass(frozen=True)
class DecisionOutcome:
    """What recording a decision did: the pattern it counted towards (``None`` if pruned) and whether it was new."""

    pattern: Pattern | None
    pruned: bool
    duplicate: bool


class CatalogStore:
    """The catalog's database file."""

    def __init__(
        self,
        path: Path,
        *,
        backups: int = 3,
        max_bytes: int = 100 * 1024 * 1024,
        prune_below: float = 0.3,
        prune_after_uses: int = 5,
    ) -> None:
        self.db = Database(path, SCHEMA, backups=backups)
        self.max_bytes = max_bytes
        self.prune_below = prune_below
        self.prune_after_uses = prune_after_uses

    def open(self) -> CatalogStore:
        self.db.open()
        return self

    def close(self) -> None:
        self.db.close()

    # -- patterns ----------------------------------------------------------------------------------------------

    def patterns(self) -> list[Pattern]:
        return [_pattern(row) for row in self.db.query("SELECT * FROM orchestration_patterns ORDER BY created_at, id")]

    def pattern(self, pattern_id: str) -> Pattern | None:
        rows = self.db.query("SELECT * FROM orchestration_patterns WHERE id = ?", (pattern_id,))
        return _pattern(rows[0]) if rows else None

    def save_pattern(
        self,
        goal: str,
        agent_sequence: Sequence[str],
        dependencies: dict[str, list[str]] | None = None,
        parallel_groups: Sequence[Sequence[str]] | None = None,
    ) -> Pattern:
        """Store a pattern; the same goal with the same agent sequence is the same pattern (returned as it is)."""
        sequence = json.dumps(list(agent_sequence))
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM orchestration_patterns WHERE goal = ? AND agent_sequence = ?", (goal, sequence)
            ).fetchone()
            if row is not None:
                return _pattern(row)
            pattern_id = f"pat_{uuid.uuid4().hex[:16]}"
            conn.execute(
                "INSERT INTO orchestration_patterns (id, goal, agent_sequence, dependencies, parallel_groups)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    pattern_id,
                    goal,
                    sequence,
                    json.dumps(dependencies or {}),
                    json.dumps([list(g) for g in parallel_groups or []]),
                ),
            )
            return _pattern(conn.execute("SELECT * FROM orchestration_patterns WHERE id = ?", (pattern_id,)).fetchone())

    def record_decision(
        self,
        *,
        task_id: str,
        task_description: str,
        agents_used: Sequence[str],
        result: Outcome,
        duration_ms: int | None,
        tokens_saved: int | None,
        pattern_id: str | None,
    ) -> DecisionOutcome:
        """Log a decision and count its outcome towards ``pattern_id``, in one transaction.

        A ``task_id`` already recorded is not counted again (clients retry). ``partial`` counts as a failure of the
        pattern. A pattern whose success rate falls under ``prune_below`` after ``prune_after_uses`` uses is deleted.
        """
        with self.db.transaction() as conn:
            seen = conn.execute("SELECT pattern_id FROM decision_history WHERE task_id = ?", (task_id,)).fetchone()
            if seen is not None:
                current = conn.execute("SELECT * FROM orchestration_patterns WHERE id = ?", (seen[0],)).fetchone()
                return DecisionOutcome(_pattern(current) if current else None, pruned=False, duplicate=True)
            conn.execute(
                "INSERT INTO decision_history (task_id, task_description, agents_used, result, duration_ms,"
                " tokens_saved, pattern_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    task_id,
                    task_description,
                    json.dumps(list(agents_used)),
                    result,
                    duration_ms,
                    tokens_saved,
                    pattern_id,
                ),
            )
            row = conn.execute("SELECT * FROM orchestration_patterns WHERE id = ?", (pattern_id,)).fetchone()
            if row is None:
                return DecisionOutcome(None, pruned=False, duplicate=False)
            pattern = _pattern(row)
            uses = pattern.uses + 1
            succeeded = result == "success"
            pattern.success_count += succeeded
            pattern.failure_count += not succeeded
            if duration_ms is not None:
                pattern.avg_duration_ms = round(
                    pattern.avg_duration_ms + (duration_ms - pattern.avg_duration_ms) / uses
                )
            if tokens_saved is not None:
                pattern.avg_tokens_saved = round(
                    pattern.avg_tokens_saved + (tokens_saved - pattern.avg_tokens_saved) / uses
                )
            if pattern.uses >= self.prune_after_uses and pattern.success_rate < self.prune_below:
                conn.execute("DELETE FROM orchestration_patterns WHERE id = ?", (pattern.id,))
                return DecisionOutcome(pattern, pruned=True, duplicate=False)
            conn.execute(
                "UPDATE orchestration_patterns SET success_count = ?, failure_count = ?, avg_duration_ms = ?,"
                " avg_tokens_saved = ?, updated_at = CURRENT_TIMESTAMP WHERE id = ?",
                (
                    pattern.success_count,
                    pattern.failure_count,
                    pattern.avg_duration_ms,
                    pattern.avg_tokens_saved,
                    pattern.id,
                ),
            )
            updated = conn.execute("SELECT * FROM orchestration_patterns WHERE id = ?", (pattern.id,)).fetchone()
            return DecisionOutcome(_pattern(updated), pruned=False, duplicate=False)

    def decision_count(self) -> int:
        return int(self.db.query("SELECT count(*) FROM decision_history")[0][0])

    # -- the query log -----------------------------------------------------------------------------------------

    def log_queries(self, rows: Sequence[QueryLogRow]) -> None:
        if not rows:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO agent_queries (capability, role, context, agents_returned, cache_hit, duration_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.capability,
                        r.role,
                        r.context,
                        json.dumps(r.agents_returned),
                        int(r.cache_hit),
                        round(r.duration_ms),
                    )
                    for r in rows
                ],
            )
        self.prune_log()

    def query_log_count(self) -> int:
        return int(self.db.query("SELECT count(*) FROM agent_queries")[0][0])

    def prune_log(self) -> int:
        """Delete the oldest half of the query log while the file is over ``max_bytes``; the rows deleted."""
        deleted = 0
        while self.db.size_bytes() > self.max_bytes:
            count = self.query_log_count()
            if count == 0:
                break
            with self.db.transaction() as conn:
                cursor = conn.execute(
                    "DELETE FROM agent_queries WHERE id IN (SELECT id FROM agent_queries ORDER BY id LIMIT ?)",
                    (max(1, count // 2),),
                )
                deleted += cursor.rowcount
            self.db.compact()
        return deleted


def _pattern(row: sqlite3.Row) -> Pattern:
    return Pattern(
        id=row["id"],
        goal=row["goal"],
        agent_sequence=json.loads(row["agent_sequence"]),
        dependencies=json.loads(row["dependencies"] or "{}"),
        parallel_groups=json.loads(row["parallel_groups"] or "[]"),
        success_count=row["success_count"],
        failure_count=row["failure_count"],
        avg_duration_ms=row["avg_duration_ms"],
        avg_tokens_saved=row["avg_tokens_saved"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
