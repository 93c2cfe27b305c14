"""A Python client for the catalog's JSON-RPC API (``POST /``) that keeps answering when the server is gone.

Every answer is the server's result dict plus ``answered_by``: ``"server"``, ``"client-cache"`` (a server answer
kept here for ``cache_ttl_s``) or ``"fallback"`` (built from the role registry file because the server did not
answer). ``source`` is not used for that marker: ``getOrchestrationPattern`` already answers with its own ``source``.

    with CatalogClient(workspace=Path(".")) as catalog:
        catalog.query_agents(role="frontend_developer")["agents"]
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx2 as httpx
from rapidfuzz import fuzz, process

from tandem.toolsets.catalog.answer_cache import AnswerCache, cache_key
from tandem.toolsets.catalog.definitions import Role, read_registry
from tandem.toolsets.catalog.ranking import WEIGHTS
from tandem.toolsets.catalog.text_index import terms

logger = logging.getLogger("tandem.client")

DEFAULT_URL = "http://127.0.0.1:8765"
REGISTRY = Path(".claude") / "agent-registry.yml"
FALLBACK_CONFIDENCE = 0.6
"""Fallback scores are scaled by this: the registry names roles and agents, not what each agent says it does."""
MAX_PENDING = 100
"""Decisions kept while the server is away; also the server's largest JSON-RPC batch, so they go in one request."""
ROLE_FUZZY_CUTOFF = 80.0
CAPABILITY_FUZZY_CUTOFF = 75.0
NAME_BONUS = 0.1
PATTERN_LENGTH = 3
"""Roles a fallback orchestration pattern chains, at most."""

# A server that does not serve the catalog (-32601) or failed inside (-32603) is as good as absent for this call.
_UNAVAILABLE_CODES = frozenset({-32601, -32603})
_CACHED = (
    "queryAgents",
    "querySkills",
    "queryWorkflows",
    "getAgent",
    "getSkill",
    "getWorkflow",
    "getOrchestrationPattern",
    "queryPattern",
)
_PATTERN_METHODS = ("getOrchestrationPattern", "queryPattern")

Detail = Literal["summary", "full"]
Outcome = Literal["success", "failure", "partial"]


class CatalogError(Exception):
    """The server answered with a JSON-RPC error (invalid params, no such agent): the call itself was wrong, so
    no fallback is tried."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        self.method = method
        self.code = code
        self.message = message
        self.data = data
        problems = data.get("validation_errors") if isinstance(data, dict) else None
        shown = f"{method}: {message} (JSON-RPC {code})"
        super().__init__(f"{shown}: {'; '.join(map(str, problems))}" if problems else shown)


class CatalogUnavailable(Exception):
    """Neither the server nor the role registry can answer this call."""


class _Unreachable(Exception):
    """No usable answer from the server (refused, timed out, HTTP error, malformed body): the fallback answers."""


class EmbeddedRegistry:
    """The role registry file (``roles.<role>: {primary, fallbacks, capabilities, model, use_when}``) in memory,
    re-read when the file changes: all the fallback knows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: str | None = None
        self._roles: dict[str, Role] = {}
        self._stamp: tuple[int, int] | None = None

    def roles(self) -> dict[str, Role]:
        """The roles by name; empty (with ``problem`` saying why) when the file is missing or unusable."""
        try:
            stat = self.path.stat()
        except OSError:
            self._roles, self._stamp = {}, None
            self.problem = f"there is no role registry at {self.path}"
            return self._roles
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            roles, diagnostics = read_registry(self.path, str(self.path))
            self._roles, self._stamp = roles, stamp
            reasons = "; ".join(d.reason for d in diagnostics) or "it names no roles"
            self.problem = None if roles else f"the role registry {self.path} is unusable: {reasons}"
        return self._roles

    def agents(self, capability: str | None, role: str | None, context: str | None, limit: int) -> dict[str, Any]:
        """The ``queryAgents`` answer from the registry: the agents of the roles that fit, primaries first."""
        ranked, reasoning = self._ranked_roles(capability, role, context)
        best: dict[str, tuple[float, Role]] = {}
        for found, score in ranked:
            for place, name in enumerate([found.primary, *found.fallbacks]):
                # The server's weighting: a role's primary counts fully, each fallback a little less.
                agent_score = score * (1.0 if place == 0 else max(0.5, 0.9 - 0.05 * (place - 1)))
                if capability and _named_for(capability, name):
                    # As on the server: the agent named for the capability (kubernetes -> kubernetes-operator) first.
                    agent_score = min(1.0, score + NAME_BONUS)
                if agent_score > best.get(name, (0.0, found))[0]:
                    best[name] = (agent_score, found)
        order = sorted(best.items(), key=lambda item: -item[1][0])[: max(limit, 1)]
        agents = [
            {
                "name": name,
                "description": "",
                "model": found.model,
                "capabilities": found.capabilities,
                "plugin": None,
                "role": found.name,
                "fallbacks": found.fallbacks,
                "score": round(score * FALLBACK_CONFIDENCE, 4),
            }
            for name, (score, found) in order
        ]
        confidence = agents[0]["score"] if agents else 0.0
        return {"agents": agents, "reasoning": reasoning, "confidence": round(confidence, 3)}

    def orchestration_pattern(self, goal: str) -> dict[str, Any]:
        """The ``getOrchestrationPattern`` answer from the registry: the primaries of the roles the goal reads as."""
        ranked, reasoning = self._ranked_roles(None, None, goal)
        sequence = list(dict.fromkeys(found.primary for found, _ in ranked[:PATTERN_LENGTH]))
        if not sequence:
            return {
                "pattern": None,
                "success_rate": None,
                "similarity": 0.0,
                "task_count": 0,
                "source": "none",
                "reasoning": "no role in the registry fits this goal",
                "confidence": 0.0,
            }
        return {
            "pattern": {
                "id": None,
                "goal": goal,
                "agent_sequence": sequence,
                "dependencies": {b: [a] for a, b in itertools.pairwise(sequence)},
                "parallel_groups": [[name] for name in sequence],
            },
            "success_rate": None,
            "similarity": 0.0,
            "task_count": 0,
            "source": "registry",
            "reasoning": f"the primaries of the roles the goal reads as, in order of fit ({reasoning})",
            "confidence": round(ranked[0][1] * FALLBACK_CONFIDENCE * 0.5, 3),
        }

    def _ranked_roles(
        self, capability: str | None, role: str | None, context: str | None
    ) -> tuple[list[tuple[Role, float]], str]:
        roles = self.roles()
        if not roles:
            raise CatalogUnavailable(self.problem or f"there is no role registry at {self.path}")
        parts: dict[str, dict[str, float]] = {name: {} for name in roles}
        why: dict[str, list[str]] = {name: [] for name in roles}
        notes: list[str] = []
        present = [p for p, given in (("role", role), ("capability", capability), ("context", context)) if given]
        if role:
            notes.extend(self._score_role(roles, role, parts, why))
        if capability:
            self._score_capability(roles, capability, parts, why)
        if context:
            for name, found in roles.items():
                if overlap := _overlap(context, found):
                    parts[name]["context"] = overlap
                    why[name].append(f"the context shares {overlap:.0%} of its words with role '{name}'")
        if not present:
            return [], "no capability, role or context given"
        total = sum(WEIGHTS[p] for p in present)
        scores = {name: sum(WEIGHTS[p] * got.get(p, 0.0) for p in present) / total for name, got in parts.items()}
        ranked = sorted(((roles[n], s) for n, s in scores.items() if s > 0), key=lambda item: (-item[1], item[0].name))
        if not ranked:
            return [], "; ".join([*notes, "no role in the registry matched"])
        return ranked, "; ".join(dict.fromkeys([*why[ranked[0][0].name], *notes]))

    @staticmethod
    def _score_role(
        roles: dict[str, Role], role: str, parts: dict[str, dict[str, float]], why: dict[str, list[str]]
    ) -> list[str]:
        by_norm = {_norm_role(name): name for name in roles}
        wanted = _norm_role(role)
        name = by_norm.get(wanted)
        certainty = 1.0
        notes: list[str] = []
        if name is None:
            match = process.extractOne(wanted, list(by_norm), scorer=fuzz.ratio, score_cutoff=ROLE_FUZZY_CUTOFF)
            if match is not None:
                name, certainty = by_norm[match[0]], match[1] / 100
                notes.append(f"role '{role}' read as '{name}' ({match[1]:.0f}% similar)")
        if name is not None:
            parts[name]["role"] = certainty
            why[name].append(f"primary and fallbacks of role '{name}' in the role registry")
            return notes
        # An unknown role still says what is wanted, as the server reads it: its words count as context.
        notes.append(f"no role '{role}' in the role registry; its words used as context")
        for other, found in roles.items():
            if overlap := _overlap(role, found):
                parts[other]["role"] = 0.6 * overlap
        return notes

    @staticmethod
    def _score_capability(
        roles: dict[str, Role], capability: str, parts: dict[str, dict[str, float]], why: dict[str, list[str]]
    ) -> None:
        wanted = capability.strip().lower()
        for name, found in roles.items():
            score, reason = 0.0, ""
            if wanted in found.capabilities:
                score, reason = 1.0, f"role '{name}' lists capability '{wanted}'"
            else:
                match = process.extractOne(
                    wanted, found.capabilities, scorer=fuzz.ratio, score_cutoff=CAPABILITY_FUZZY_CUTOFF
                )
                if match is not None:
                    score = 0.85 * match[1] / 100
                    reason = f"capability '{match[0]}' of role '{name}' is a close spelling of '{wanted}'"
                elif named := [a for a in [found.primary, *found.fallbacks] if _named_for(wanted, a)]:
                    score, reason = 0.75, f"agent '{named[0]}' of role '{name}' is named for '{wanted}'"
                elif overlap := _overlap(wanted, found):
                    score, reason = 0.75 * overlap, f"'{wanted}' is in what role '{name}' is for"
            if score:
                parts[name]["capability"] = score
                why[name].append(reason)


class CatalogClient:
    """The catalog over JSON-RPC, with a local answer cache and the role registry as the fallback.

    Each call tries the server (no circuit stays open: a server that comes back answers the very next call);
    when it does not answer, the call is answered from the role registry and says so in ``answered_by`` and its
    ``reasoning``. A JSON-RPC error the server sends back raises ``CatalogError``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        registry_path: Path | None = None,
        workspace: Path | None = None,
        timeout_s: float = 2.0,
        cache_ttl_s: float = 300.0,
        cache_max_entries: int = 1000,
        max_pending: int = MAX_PENDING,
    ) -> None:
        """``registry_path`` defaults to ``.claude/agent-registry.yml`` in ``workspace`` (default: the current
        directory), where the server reads it too. ``cache_ttl_s=0`` turns the local cache off."""
        self.base_url = base_url.rstrip("/")
        self.registry = EmbeddedRegistry(registry_path or (workspace or Path.cwd()) / REGISTRY)
        self.cache = AnswerCache(dict.fromkeys(_CACHED, cache_ttl_s), cache_max_entries)
        self.last_error: str | None = None
        self._http = httpx.Client(timeout=timeout_s)
        self._ids = itertools.count(1)
        self._pending: deque[dict[str, Any]] = deque(maxlen=min(max(max_pending, 1), MAX_PENDING))
        self._lock = threading.Lock()
        self._reachable: bool | None = None

    def __enter__(self) -> CatalogClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Send the decisions still waiting (if the server answers), then close the connection pool."""
        if self._pending:
            try:
                self._flush()
            except _Unreachable as exc:
                logger.warning("%d decision(s) never reached the catalog server: %s", len(self._pending), exc)
        self._http.close()

    @property
    def pending_decisions(self) -> int:
        """Decisions recorded while the server was away, to be sent on the next successful contact."""
        return len(self._pending)

    # -- queries -----------------------------------------------------------------------------------------------

    def query_agents(
        self, capability: str | None = None, role: str | None = None, context: str | None = None, limit: int = 5
    ) -> dict[str, Any]:
        """Agents for a task by role (registry primary and fallbacks), capability and/or context, best first."""
        params = {"capability": capability, "role": role, "context": context, "limit": limit}
        return self._query("queryAgents", params, lambda: self.registry.agents(capability, role, context, limit))

    def query_skills(self, context: str | None = None, category: str | None = None, limit: int = 5) -> dict[str, Any]:
        """Skills relevant to ``context`` (and/or one ``category``); the fallback knows none."""
        params = {"context": context, "category": category, "limit": limit}
        return self._query("querySkills", params, lambda: _nothing("skills"))

    def query_workflows(self, goal: str, limit: int = 5) -> dict[str, Any]:
        """Workflows whose purpose matches ``goal``; the fallback knows none."""
        return self._query("queryWorkflows", {"goal": goal, "limit": limit}, lambda: _nothing("workflows"))

    def get_agent(self, name: str, detail: Detail = "summary") -> dict[str, Any]:
        """One agent's summary, or with ``detail='full'`` its definition; only the server has them."""
        return self._query("getAgent", {"name": name, "detail": detail}, _definitions_missing("agent", name))

    def get_skill(self, name: str, detail: Detail = "summary") -> dict[str, Any]:
        """One skill's summary or instructions; only the server has them."""
        return self._query("getSkill", {"name": name, "detail": detail}, _definitions_missing("skill", name))

    def get_workflow(self, name: str, detail: Detail = "summary") -> dict[str, Any]:
        """One workflow's summary or text; only the server has them."""
        return self._query("getWorkflow", {"name": name, "detail": detail}, _definitions_missing("workflow", name))

    def get_orchestration_pattern(self, goal: str) -> dict[str, Any]:
        """The agent sequence for ``goal``: the server's stored or proposed pattern; in the fallback, the primaries
        of the registry roles the goal reads as (``source: "registry"``)."""
        return self._query("getOrchestrationPattern", {"goal": goal}, lambda: self.registry.orchestration_pattern(goal))

    def query_pattern(self, goal: str, min_similarity: float | None = None, limit: int = 5) -> dict[str, Any]:
        """Stored patterns similar to ``goal``; they live on the server, so the fallback has none."""
        params = {"goal": goal, "min_similarity": min_similarity, "limit": limit}
        return self._query("queryPattern", params, lambda: _nothing("patterns", what="stored patterns"))

    # -- writes and health -------------------------------------------------------------------------------------

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
        """Record how a task went so patterns learn. Best-effort: with the server away it answers
        ``stored: False, queued: True`` and sends the decision on the next successful contact (the server counts a
        ``task_id`` once, so a resend is harmless). A decision the server refuses raises ``CatalogError``."""
        params = _given(
            task_id=task_id,
            task_description=task_description,
            agents_used=agents_used,
            result=result,
            duration_ms=duration_ms,
            tokens_saved=tokens_saved,
            pattern_id=pattern_id,
        )
        try:
            answer = self._server("cacheDecision", params)
        except _Unreachable as exc:
            self._failed("cacheDecision", exc)
            with self._lock:
                dropped = self._pending[0]["task_id"] if len(self._pending) == self._pending.maxlen else None
                self._pending.append(params)
                pending = len(self._pending)
            reasoning = f"the catalog server is unreachable ({exc}); kept to send on the next successful call"
            if dropped is not None:
                logger.warning("decision queue full (%d): the oldest, task %r, is dropped", pending, dropped)
                reasoning += f"; the queue is full, so the oldest decision (task {dropped!r}) was dropped"
            return {
                "stored": False,
                "queued": True,
                "pending": pending,
                "task_id": task_id,
                "reasoning": reasoning,
                "answered_by": "fallback",
            }
        self.cache.invalidate(*_PATTERN_METHODS)
        return {**answer, "answered_by": "server"}

    def health(self) -> dict[str, Any]:
        """The server's ``getHealth``, or (never raising) ``status: "unreachable"`` with why and what the fallback
        has; both with the client's own figures under ``client``."""
        try:
            answer = {**self._server("getHealth", {}), "answered_by": "server"}
        except _Unreachable as exc:
            self._failed("getHealth", exc)
            roles = self.registry.roles()
            answer = {
                "status": "unreachable",
                "server": self.base_url,
                "reason": str(exc),
                "registry": {"path": str(self.registry.path), "roles": len(roles), "problem": self.registry.problem},
                "answered_by": "fallback",
            }
        answer["client"] = {"pending_decisions": len(self._pending), "cache": self.cache.stats()}
        return answer

    # -- the wire ----------------------------------------------------------------------------------------------

    def _query(self, method: str, params: dict[str, Any], fallback: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        params = _given(**params)
        key = cache_key(method, params)
        found = self.cache.get(method, key)
        if found is not None:
            return {**found, "cache_hit": True, "answered_by": "client-cache"}
        try:
            answer = self._server(method, params)
        except _Unreachable as exc:
            self._failed(method, exc)
            try:
                shown = fallback()
            except CatalogUnavailable as missing:
                raise CatalogUnavailable(
                    f"{method}: the catalog server at {self.base_url} is unreachable ({exc}) and {missing}; "
                    "start it with 'tandem serve --http', or give the client a registry_path"
                ) from None
            why = f"the catalog server is unreachable ({exc}); answered from the role registry"
            # Fallback answers are never cached: the next call must try the server again.
            return {**shown, "reasoning": f"{why}: {shown['reasoning']}", "cache_hit": False, "answered_by": "fallback"}
        self.cache.put(method, key, answer)
        return {**answer, "answered_by": "server"}

    def _server(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The server's result for one call, after the waiting decisions (so this call sees them)."""
        if self._pending:
            self._flush()
        request = self._request(method, params)
        result = _result(method, self._exchange(request), request["id"])
        if self._reachable is False:
            logger.info("catalog server %s answers again", self.base_url)
        self._reachable, self.last_error = True, None
        return result

    def _flush(self) -> None:
        """Send every waiting decision in one batch. One the server refuses is dropped (it never will fit); one it
        could not take now (no answer for it, an internal error) stays queued, without failing this call.

        The lock is held over the request, so two threads never send and then remove the same decisions."""
        with self._lock:
            if not self._pending:
                return
            requests = [(self._request("cacheDecision", params), params) for params in self._pending]
            answers = self._exchange([request for request, _ in requests])
            by_id = {a.get("id"): a for a in answers if isinstance(a, dict)} if isinstance(answers, list) else {}
            kept = []
            for request, params in requests:
                try:
                    _result("cacheDecision", by_id.get(request["id"]), request["id"])
                except CatalogError as exc:
                    logger.warning("a waiting decision was refused by the server and dropped: %s", exc)
                except _Unreachable:
                    kept.append(params)
            self._pending.clear()
            self._pending.extend(kept)
        self.cache.invalidate(*_PATTERN_METHODS)
        logger.info("sent %d waiting decision(s) to the catalog server", len(requests) - len(kept))

    def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "method": method, "params": params, "id": next(self._ids)}

    def _exchange(self, body: Any) -> Any:
        try:
            response = self._http.post(f"{self.base_url}/", json=body)
        except httpx.HTTPError as exc:
            raise _Unreachable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
        if response.status_code != 200:
            raise _Unreachable(f"HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise _Unreachable("the answer is not JSON") from exc

    def _failed(self, method: str, exc: _Unreachable) -> None:
        self.last_error = str(exc)
        # Warn once per outage; every call during it would otherwise repeat the same line.
        level = logging.WARNING if self._reachable is not False else logging.DEBUG
        logger.log(level, "catalog server %s unreachable (%s); %s answered by the fallback", self.base_url, exc, method)
        self._reachable = False


def _result(method: str, answer: Any, request_id: int) -> dict[str, Any]:
    """The ``result`` of one JSON-RPC answer; its ``error`` raised as ``CatalogError``."""
    if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0":
        raise _Unreachable("the answer is not a JSON-RPC 2.0 response")
    if answer.get("id") != request_id:
        raise _Unreachable("the answer is for another request")
    error = answer.get("error")
    if isinstance(error, dict):
        code, message = error.get("code"), str(error.get("message", ""))
        if not isinstance(code, int) or code in _UNAVAILABLE_CODES:
            raise _Unreachable(f"JSON-RPC {code}: {message}")
        raise CatalogError(method, code, message, error.get("data"))
    result = answer.get("result")
    if not isinstance(result, dict):
        raise _Unreachable("the JSON-RPC answer has no result object")
    return result


def _given(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _nothing(key: str, what: str | None = None) -> dict[str, Any]:
    return {key: [], "reasoning": f"it holds no {what or key}", "confidence": 0.0}


def _definitions_missing(kind: str, name: str) -> Callable[[], dict[str, Any]]:
    def fallback() -> dict[str, Any]:
        raise CatalogUnavailable(f"the role registry holds no {kind} definitions ({kind} {name!r} needs the server)")

    return fallback


def _norm_role(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def _role_terms(role: Role) -> set[str]:
    return set(terms(" ".join([role.name, role.use_when, *role.capabilities])))


def _named_for(capability: str, agent: str) -> bool:
    wanted = set(terms(capability))
    return bool(wanted) and wanted <= set(terms(agent))


def _overlap(text: str, role: Role) -> float:
    """The share of the text's words (stemmed, stopwords dropped) found in the role's name, use and capabilities."""
    wanted = set(terms(text))
    return len(wanted & _role_terms(role)) / len(wanted) if wanted else 0.0
