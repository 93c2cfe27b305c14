"""The catalog service: one per server process. It owns the index, the answer cache, the database and the
background work (file watching, periodic re-index, query-log flushing, backups), and answers the seed's methods.

Answers are the seed's shapes: plain dicts, each with ``reasoning``, ``confidence`` and ``cache_hit``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import resource
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import watchfiles

from tandem.core.catalog_settings import CatalogSettings
from tandem.core.errors import ToolError
from tandem.core.latency import MethodTimings
from tandem.store.catalog import CatalogStore, Outcome, Pattern, QueryLogRow
from tandem.toolsets.catalog.answer_cache import AnswerCache, cache_key
from tandem.toolsets.catalog.definitions import Definition, Kind
from tandem.toolsets.catalog.indexer import CatalogIndex, Indexer
from tandem.toolsets.catalog.patterns import PatternIndex, PatternMatch
from tandem.toolsets.catalog.ranking import rank

logger = logging.getLogger("tandem.catalog")

FLUSH_INTERVAL_S = 1.0
WATCH_DEBOUNCE_MS = 300
_NAMESPACE: dict[Kind, str] = {"agent": "agents", "skill": "skills", "workflow": "workflows"}


class Catalog:
    """Agents, skills, workflows and orchestration patterns, indexed and queryable."""

    def __init__(self, workspace: Path, data_dir: Path, settings: CatalogSettings) -> None:
        self.settings = settings
        self.indexer = Indexer(workspace, settings)
        self.store = CatalogStore(
            data_dir / settings.database,
            backups=settings.backups,
            max_bytes=settings.max_database_bytes,
            prune_below=settings.prune_below,
            prune_after_uses=settings.prune_after_uses,
        )
        self.cache = AnswerCache(settings.cache_ttl.model_dump(), settings.cache_max_entries)
        self.started = time.time()
        self.timings: dict[str, MethodTimings] = defaultdict(MethodTimings)
        self.index: CatalogIndex | None = None
        self.patterns = PatternIndex([])
        self.reindexes = 0
        self._reindex_lock = threading.Lock()
        self._log: list[QueryLogRow] = []
        self._log_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.watching = False

    # -- life ------------------------------------------------------------------------------------------------

    def start(self, *, background: bool = True) -> Catalog:
        self.store.open()
        self.patterns = PatternIndex(self.store.patterns())
        self.reindex()
        if background:
            self._spawn(self._periodic, "catalog-periodic")
            if self.settings.watch:
                self._spawn(self._watch, "catalog-watch")
        return self

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.flush_log()
        self.store.close()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _periodic(self) -> None:
        last_reindex = last_backup = time.monotonic()
        age = self.store.db.last_backup_age_s()
        if self.settings.backups and (age is None or age > self.settings.backup_interval_s):
            self._guarded(self.store.db.backup)
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self._guarded(self.flush_log)
            now = time.monotonic()
            if self.settings.reindex_interval_s and now - last_reindex >= self.settings.reindex_interval_s:
                last_reindex = now
                self._guarded(self.reindex)
            if self.settings.backups and now - last_backup >= self.settings.backup_interval_s:
                last_backup = now
                self._guarded(self.store.db.backup)

    def _watch(self) -> None:
        roots = self.indexer.watch_roots()
        if not roots:
            return
        self.watching = True
        try:
            for _changes in watchfiles.watch(
                *roots,
                watch_filter=lambda _change, path: path.endswith((".md", ".yml", ".yaml")),
                debounce=WATCH_DEBOUNCE_MS,
                stop_event=self._stop,
                yield_on_timeout=False,
                raise_interrupt=False,
            ):
                self._guarded(self.reindex)
        except Exception:
            logger.exception("catalog file watching stopped; periodic re-index goes on")
        finally:
            self.watching = False

    @staticmethod
    def _guarded(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception:
            logger.exception("catalog background work failed: %s", getattr(fn, "__name__", fn))

    # -- indexing --------------------------------------------------------------------------------------------

    def reindex(self) -> dict[str, Any]:
        """Re-read changed definition files and swap in the new index; cached answers are dropped."""
        with self._reindex_lock:
            index = self.indexer.build()
            self.index = index
            self.reindexes += 1
        self.cache.invalidate("agents", "skills", "workflows", "patterns")
        return {
            "indexes": {**index.counts(), "patterns": len(self.patterns.patterns)},
            "files_read": index.files_read,
            "duration_ms": index.build_ms,
            "diagnostics": len(index.diagnostics),
            "duplicates": len(index.duplicates),
        }

    @property
    def current(self) -> CatalogIndex:
        if self.index is None:
            raise ToolError("the catalog is not indexed yet")
        return self.index

    # -- measuring -------------------------------------------------------------------------------------------

    @contextmanager
    def _measured(self, method: str) -> Iterator[None]:
        started = time.perf_counter()
        failed = True
        try:
            yield
            failed = False
        finally:
            self.timings[method].add((time.perf_counter() - started) * 1000, failed)

    def _cached(self, method: str, namespace: str, params: dict[str, Any], answer: Callable[[], dict[str, Any]]) -> Any:
        with self._measured(method):
            key = cache_key(method, params)
            found = self.cache.get(namespace, key)
            if found is not None:
                found["cache_hit"] = True
                return found
            result = answer()
            self.cache.put(namespace, key, result)
            return {**result, "cache_hit": False}

    # -- queries ---------------------------------------------------------------------------------------------

    def query_agents(
        self, capability: str | None = None, role: str | None = None, context: str | None = None, limit: int = 5
    ) -> dict[str, Any]:
        params = {"capability": capability, "role": role, "context": context, "limit": limit}
        started = time.perf_counter()
        result = self._cached("queryAgents", "agents", params, lambda: self._agents(capability, role, context, limit))
        if self.settings.log_queries:
            row = QueryLogRow(
                capability,
                role,
                context,
                [a["name"] for a in result["agents"]],
                result["cache_hit"],
                (time.perf_counter() - started) * 1000,
            )
            with self._log_lock:
                self._log.append(row)
        return result

    def _agents(self, capability: str | None, role: str | None, context: str | None, limit: int) -> dict[str, Any]:
        index = self.current
        ranking = rank(index, index.kinds["agent"], capability=capability, role=role, context=context, limit=limit)
        agents = []
        for definition, scored in ranking.items:
            shown = definition.summary()
            if scored.role is not None:
                shown["role"] = scored.role
                shown["fallbacks"] = scored.fallbacks or []
            shown["score"] = round(scored.score, 4)
            agents.append(shown)
        return {"agents": agents, "reasoning": ranking.reasoning, "confidence": ranking.confidence}

    def query_skills(self, context: str | None = None, category: str | None = None, limit: int = 5) -> dict[str, Any]:
        params = {"context": context, "category": category, "limit": limit}
        return self._cached("querySkills", "skills", params, lambda: self._ranked("skill", context, category, limit))

    def query_workflows(self, goal: str | None = None, limit: int = 5) -> dict[str, Any]:
        params = {"goal": goal, "limit": limit}
        return self._cached("queryWorkflows", "workflows", params, lambda: self._ranked("workflow", goal, None, limit))

    def _ranked(self, kind: Kind, context: str | None, category: str | None, limit: int) -> dict[str, Any]:
        index = self.current
        ranking = rank(index, index.kinds[kind], context=context, category=category, limit=limit)
        found = [{**d.summary(), "score": round(s.score, 4)} for d, s in ranking.items]
        return {_NAMESPACE[kind]: found, "reasoning": ranking.reasoning, "confidence": ranking.confidence}

    def definition(self, kind: Kind, name: str) -> Definition:
        """One definition by ``name`` or ``plugin/name``; ``NotFound`` names the closest ones."""
        kind_index = self.current.kinds[kind]
        plugin, _, bare = name.rpartition("/")
        named = [kind_index.items[i] for i in kind_index.by_name.get(bare.lower(), ())]
        found = [d for d in named if not plugin or d.plugin == plugin]
        if found:
            return found[0]
        close = rank(self.current, kind_index, capability=bare, limit=3).items
        hint = f"; did you mean {', '.join(d.name for d, _ in close)}?" if close else ""
        raise ToolError(f"no {kind} named {name!r}{hint}")

    def get_definition(self, kind: Kind, name: str, detail: Literal["summary", "full"] = "summary") -> dict[str, Any]:
        with self._measured(f"get{kind.capitalize()}"):
            definition = self.definition(kind, name)
            shown = definition.full() if detail == "full" else {**definition.summary(), "path": definition.path}
            return {kind: shown, "detail": detail}

    # -- patterns --------------------------------------------------------------------------------------------

    def query_pattern(self, goal: str, min_similarity: float | None = None, limit: int = 5) -> dict[str, Any]:
        threshold = self.settings.min_similarity if min_similarity is None else min_similarity
        params = {"goal": goal, "min_similarity": threshold, "limit": limit}

        def answer() -> dict[str, Any]:
            matches = self.patterns.match(goal, threshold, limit)
            return {
                "patterns": [m.as_dict() for m in matches],
                "reasoning": _pattern_reasoning(matches, threshold, len(self.patterns.patterns)),
                "confidence": round(matches[0].score, 4) if matches else 0.0,
            }

        return self._cached("queryPattern", "patterns", params, answer)

    def get_orchestration_pattern(self, goal: str) -> dict[str, Any]:
        """The best stored pattern for ``goal``; without one, a sequence proposed from the catalog (said so)."""

        def answer() -> dict[str, Any]:
            matches = self.patterns.match(goal, self.settings.min_similarity, 1)
            if matches:
                best = matches[0]
                return {
                    **best.as_dict(),
                    "source": "stored",
                    "reasoning": _pattern_reasoning(matches, self.settings.min_similarity, len(self.patterns.patterns)),
                    "confidence": round(best.score, 4),
                }
            return self._proposed(goal)

        return self._cached("getOrchestrationPattern", "patterns", {"goal": goal}, answer)

    def _proposed(self, goal: str) -> dict[str, Any]:
        index = self.current
        workflows = rank(index, index.kinds["workflow"], context=goal, limit=1)
        if workflows.items and workflows.items[0][0].agents:
            workflow, _ = workflows.items[0]
            sequence = workflow.agents
            source = f"workflow:{workflow.name}"
            why = f"no stored pattern is {self.settings.min_similarity:.2f} similar; the agents of workflow "
            why += f"'{workflow.name}'"
            confidence = workflows.confidence * 0.8
        else:
            agents = rank(index, index.kinds["agent"], context=goal, limit=3)
            sequence = [d.name for d, _ in agents.items]
            source = "agents"
            why = f"no stored pattern or workflow fits; the best agents for the goal ({agents.reasoning})"
            confidence = agents.confidence * 0.5
        pattern = {
            "id": None,
            "goal": goal,
            "agent_sequence": sequence,
            "dependencies": {b: [a] for a, b in itertools.pairwise(sequence)},
            "parallel_groups": [[name] for name in sequence],
        }
        return {
            "pattern": pattern if sequence else None,
            "success_rate": None,
            "similarity": 0.0,
            "task_count": 0,
            "source": source if sequence else "none",
            "reasoning": why if sequence else "nothing in the catalog fits this goal",
            "confidence": round(confidence, 4) if sequence else 0.0,
        }

    def store_pattern(
        self,
        goal: str,
        agent_sequence: list[str],
        dependencies: dict[str, list[str]] | None = None,
        parallel_groups: list[list[str]] | None = None,
    ) -> dict[str, Any]:
        """Store a pattern (durable when this returns)."""
        with self._measured("storePattern"):
            pattern = self.store.save_pattern(goal, agent_sequence, dependencies, parallel_groups)
            self._patterns_changed()
            return {"pattern": pattern.as_dict(), "stored": True}

    def cache_decision(
        self,
        *,
        task_id: str,
        task_description: str,
        agents_used: list[str],
        result: Outcome,
        duration_ms: int | None = None,
        tokens_saved: int | None = None,
        pattern_id: str | None = None,
    ) -> dict[str, Any]:
        """Record what an orchestration did and how it went; its pattern learns from it (durable when this returns).

        The pattern is ``pattern_id`` when given, else a stored one with the same agents whose goal is similar
        enough, else a new pattern made from this decision.
        """
        with self._measured("cacheDecision"):
            if pattern_id is not None:
                if self.store.pattern(pattern_id) is None:
                    raise ToolError(f"no pattern {pattern_id!r}; queryPattern lists the stored ones")
                how = "the pattern named"
            else:
                pattern = self._same_pattern(task_description, agents_used)
                if pattern is None:
                    pattern = self.store.save_pattern(task_description, agents_used, None, [[a] for a in agents_used])
                    how = "a new pattern learned from this decision"
                else:
                    how = "the stored pattern with the same agents and a similar goal"
                pattern_id = pattern.id
            outcome = self.store.record_decision(
                task_id=task_id,
                task_description=task_description,
                agents_used=agents_used,
                result=result,
                duration_ms=duration_ms,
                tokens_saved=tokens_saved,
                pattern_id=pattern_id,
            )
            self._patterns_changed()
            shown = outcome.pattern
            if outcome.duplicate:
                reasoning = f"task {task_id!r} was already recorded; not counted twice"
            elif outcome.pruned:
                reasoning = f"counted towards {how}; its success rate fell under {self.settings.prune_below}: pruned"
            else:
                reasoning = f"counted towards {how}"
            return {
                "stored": True,
                "task_id": task_id,
                "pattern_id": pattern_id,
                "pattern_success_rate": round(shown.success_rate, 4) if shown else None,
                "task_count": shown.uses if shown else 0,
                "pruned": outcome.pruned,
                "duplicate": outcome.duplicate,
                "reasoning": reasoning,
            }

    def _same_pattern(self, goal: str, agents: list[str]) -> Pattern | None:
        for match in self.patterns.match(goal, self.settings.min_similarity, limit=len(self.patterns.patterns)):
            if match.pattern.agent_sequence == agents:
                return match.pattern
        return None

    def _patterns_changed(self) -> None:
        self.patterns = PatternIndex(self.store.patterns())
        self.cache.invalidate("patterns")

    # -- the query log ---------------------------------------------------------------------------------------

    def flush_log(self) -> int:
        with self._log_lock:
            rows, self._log = self._log, []
        self.store.log_queries(rows)
        return len(rows)

    # -- health and metrics ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        index = self.index
        try:
            size = self.store.db.size_bytes()
            connected = True
        except Exception:
            size, connected = 0, False
        health: dict[str, Any] = {
            "status": "healthy" if index is not None and connected else "degraded",
            "uptime_ms": int((time.time() - self.started) * 1000),
            "memory_mb": memory_mb(),
            "cache": self.cache.stats(),
            "database": {"connected": connected, "size_mb": round(size / 1024 / 1024, 3)},
            "indexes": {**(index.counts() if index else dict.fromkeys(("agents", "skills", "workflows"), 0))},
            "diagnostics": len(index.diagnostics) if index else 0,
            "duplicates": len(index.duplicates) if index else 0,
            "last_indexed_ms_ago": int((time.time() - index.built_at) * 1000) if index else None,
            "watching": self.watching,
        }
        health["indexes"]["patterns"] = len(self.patterns.patterns)
        if self.store.db.recovery:
            health["database"]["recovery"] = self.store.db.recovery
        return health

    def metrics(self) -> dict[str, Any]:
        everything = MethodTimings()
        for timings in self.timings.values():
            for ms in timings.recent:
                everything.add(ms, False)
        total = sum(t.count for t in self.timings.values())
        patterns = self.patterns.patterns
        rates = [p.success_rate for p in patterns]
        return {
            "queries": {"total": total, "by_method": {m: t.count for m, t in sorted(self.timings.items())}},
            "performance": {
                "avg_query_time_ms": round(sum(t.total_ms for t in self.timings.values()) / total, 3) if total else 0.0,
                "p50_query_time_ms": round(everything.percentile(0.50), 3),
                "p95_query_time_ms": round(everything.percentile(0.95), 3),
                "p99_query_time_ms": round(everything.percentile(0.99), 3),
                "by_method": {m: t.summary() for m, t in sorted(self.timings.items())},
            },
            "cache": self.cache.stats(),
            "patterns": {
                "total": len(patterns),
                "avg_success_rate": round(sum(rates) / len(rates), 4) if rates else 0.0,
            },
        }

    # -- listings --------------------------------------------------------------------------------------------

    def listing(self, kind: Kind) -> list[Definition]:
        return list(self.current.kinds[kind].items)

    def diagnostics(self) -> dict[str, Any]:
        index = self.current
        return {
            "diagnostics": [d.as_dict() for d in index.diagnostics],
            "duplicates": index.duplicates,
            "roles": sorted(index.roles),
            "indexes": index.counts(),
        }


def _pattern_reasoning(matches: list[PatternMatch], threshold: float, stored: int) -> str:
    if not matches:
        return f"none of {stored} stored patterns is at least {threshold:.2f} similar to the goal"
    best = matches[0]
    return (
        f"pattern '{best.pattern.goal}' is {best.similarity:.2f} similar (0.5 TF-IDF cosine + 0.3 keyword overlap + "
        f"0.2 string similarity) with success rate {best.pattern.success_rate:.2f} over {best.pattern.uses} uses"
    )


def answer_text(data: dict[str, Any]) -> str:
    """An answer as the text a model reads: compact JSON (every byte of it is tokens)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def memory_mb() -> float:
    """This process's resident memory in MiB (Linux: current RSS; elsewhere: the peak)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024, 2)
    except (OSError, ValueError, IndexError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 2)
