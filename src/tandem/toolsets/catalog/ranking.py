"""Ranking definitions for a query: role registry first, then exact and fuzzy capability, then context relevance,
combined into one score; every answer says why (``reasoning``) and how sure it is (``confidence``)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from tandem.toolsets.catalog.definitions import GENERIC_WORDS, Definition, Role
from tandem.toolsets.catalog.indexer import CatalogIndex, KindIndex
from tandem.toolsets.catalog.text_index import stem, terms, words

WEIGHTS = {"role": 0.5, "capability": 0.3, "context": 0.2}
"""How much each part of a query counts when several are given (normalised over the parts present)."""
CAPABILITY_FUZZY_CUTOFF = 75.0
ROLE_FUZZY_CUTOFF = 80.0
STRING_SHARE = 0.2
"""Share of the context score that is rapidfuzz string similarity to the description (the rest is BM25)."""
MODEL_NUDGE = 0.03
NAME_BONUS = 0.1
"""Added to the capability score of a definition named for the capability (react -> react-specialist)."""

_COMPLEX = frozenset(
    "architecture architect design distributed migration migrate scalable scale system complex security strategy "
    "redesign multi platform enterprise concurrency consistency".split()
)
_SIMPLE = frozenset("typo rename format formatting lint small simple quick trivial comment spelling minor".split())


@dataclass
class Scored:
    doc: int
    parts: dict[str, float] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)
    role: str | None = None
    fallbacks: list[str] | None = None
    score: float = 0.0


@dataclass
class Ranking:
    items: list[tuple[Definition, Scored]]
    reasoning: str
    confidence: float


def _entry(scored: dict[int, Scored], doc: int) -> Scored:
    found = scored.get(doc)
    if found is None:
        found = scored[doc] = Scored(doc)
    return found


def _norm_role(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip().lower())


def rank(
    index: CatalogIndex,
    kind_index: KindIndex,
    *,
    capability: str | None = None,
    role: str | None = None,
    context: str | None = None,
    category: str | None = None,
    limit: int = 5,
) -> Ranking:
    """The ``limit`` best definitions of one kind for the query, best first."""
    scored: dict[int, Scored] = {}
    notes: list[str] = []

    present: list[str] = []
    if role:
        present.append("role")
        notes.extend(_score_role(index, kind_index, role, scored))
    if capability:
        present.append("capability")
        notes.extend(_score_capability(kind_index, capability, scored))
    if context:
        present.append("context")
        notes.extend(_score_context(kind_index, context, scored))
    if category:
        wanted = category.strip().lower()
        for doc, item in enumerate(kind_index.items):
            if item.category.lower() == wanted:
                s = _entry(scored, doc)
                s.parts["category"] = 1.0
                s.why.append(f"category '{item.category}'")
    if not present and not category:
        return Ranking([], "no capability, role, context or goal given", 0.0)

    total = sum(WEIGHTS[p] for p in present) or 1.0
    complexity = _complexity(context or "")
    for s in scored.values():
        s.score = sum(WEIGHTS[p] * s.parts.get(p, 0.0) for p in present) / total
        if "category" in s.parts:
            s.score = min(1.0, s.score + 0.1) if present else 1.0
        s.score += _model_nudge(kind_index.items[s.doc], complexity, s)
    ranked = sorted(
        (s for s in scored.values() if s.score > 0),
        key=lambda s: (-s.score, kind_index.items[s.doc].plugin == "user", kind_index.items[s.doc].name),
    )[:limit]
    if not ranked:
        return Ranking([], "; ".join([*notes, "nothing matched"]), 0.0)
    best = ranked[0]
    reasoning = "; ".join(dict.fromkeys([*best.why, *notes]))
    return Ranking([(kind_index.items[s.doc], s) for s in ranked], reasoning, round(min(1.0, best.score), 3))


def _score_role(index: CatalogIndex, kind_index: KindIndex, role: str, scored: dict[int, Scored]) -> list[str]:
    wanted = _norm_role(role)
    roles = {_norm_role(name): r for name, r in index.roles.items()}
    found: Role | None = roles.get(wanted)
    certainty = 1.0
    notes: list[str] = []
    if found is None and roles:
        match = process.extractOne(wanted, list(roles), scorer=fuzz.ratio, score_cutoff=ROLE_FUZZY_CUTOFF)
        if match is not None:
            found, certainty = roles[match[0]], match[1] / 100
            notes.append(f"role '{role}' read as '{found.name}' ({match[1]:.0f}% similar)")
    if found is not None:
        for rank_at, name in enumerate([found.primary, *found.fallbacks]):
            for doc in kind_index.by_name.get(name.lower(), ()):
                s = _entry(scored, doc)
                score = certainty * (1.0 if rank_at == 0 else max(0.5, 0.9 - 0.05 * (rank_at - 1)))
                if score > s.parts.get("role", 0.0):
                    s.parts["role"] = score
                    s.role = found.name
                    s.fallbacks = found.fallbacks
                    place = "primary" if rank_at == 0 else f"fallback {rank_at}"
                    s.why.append(f"{place} for role '{found.name}' in the agent registry")
        return notes
    for doc, item in enumerate(kind_index.items):
        if item.role and _norm_role(item.role) == wanted:
            s = _entry(scored, doc)
            s.parts["role"] = 0.8
            s.role = item.role
            s.why.append(f"declares role '{item.role}'")
    if not any(_norm_role(item.role or "") == wanted for item in kind_index.items):
        # An unknown role still says what is wanted: its words count as context.
        notes.append(f"no role '{role}' in the agent registry; its words used as context")
        for doc, value in _context_scores(kind_index, role.replace("_", " ")).items():
            _entry(scored, doc).parts["role"] = 0.6 * value
    return notes


def _score_capability(kind_index: KindIndex, capability: str, scored: dict[int, Scored]) -> list[str]:
    wanted = capability.strip().lower()
    wanted_stem = " ".join(stem(w) for w in words(wanted))
    notes: list[str] = []
    for doc in kind_index.by_capability.get(wanted, ()):
        s = _entry(scored, doc)
        s.parts["capability"] = 1.0
        s.why.append(f"matched by '{wanted}' capability tag")
    tags = list(kind_index.by_capability)
    close = process.extract(wanted, tags, scorer=fuzz.ratio, score_cutoff=CAPABILITY_FUZZY_CUTOFF, limit=5)
    for tag, ratio, _ in close:
        if tag == wanted:
            continue
        for doc in kind_index.by_capability[tag]:
            s = _entry(scored, doc)
            score = 0.85 * ratio / 100
            if score > s.parts.get("capability", 0.0):
                s.parts["capability"] = score
                s.why.append(f"capability '{tag}' is a close spelling of '{wanted}' ({ratio:.0f}%)")
    for doc, value in _context_scores(kind_index, wanted).items():
        s = _entry(scored, doc)
        score = 0.75 * value
        if score > s.parts.get("capability", 0.0):
            s.parts["capability"] = score
            s.why.append(f"'{wanted}' found in the name, description or body")
    # Of the definitions that have the capability, the one named for it (and for little else) comes first.
    spellings = {wanted_stem, *(" ".join(terms(tag)) for tag, _, _ in close)} - {""}
    for doc, s in scored.items():
        name = kind_index.name_terms[doc]
        found = next((t for t in spellings if f" {t} " in name), None)
        if s.parts.get("capability", 0.0) >= 0.5 and found is not None:
            telling = [w for w in name.split() if w not in GENERIC_WORDS] or [found]
            s.parts["capability"] += NAME_BONUS * len(found.split()) / len(telling)
            s.why.insert(0, f"'{found}' is in the name")
    return notes


def _score_context(kind_index: KindIndex, context: str, scored: dict[int, Scored]) -> list[str]:
    expanded = kind_index.text.expand(context)
    notes = [f"read '{q.source}' as '{q.term}'" for q in expanded if q.how == "fuzzy"]
    for doc, value in _context_scores(kind_index, context, expanded).items():
        s = _entry(scored, doc)
        s.parts["context"] = value
        s.why.append("relevant to the context (BM25 over name, capabilities, description and body)")
    return notes[:3]


def _context_scores(kind_index: KindIndex, text: str, expanded: Any = None) -> dict[int, float]:
    """0-1 relevance of each matching document: BM25 relative to the best, times the share of the query covered,
    blended with string similarity to the description."""
    query = expanded if expanded is not None else kind_index.text.expand(text)
    if not query:
        return {}
    hits = kind_index.text.search(query)
    if not hits:
        return {}
    top = max(h.score for h in hits.values()) or 1.0
    sources: dict[str, float] = defaultdict(float)
    for q in query:
        sources[q.source] = max(sources[q.source], q.weight)
    wanted = max(len(set(words(text))), 1)
    lowered = text.lower()
    out: dict[int, float] = {}
    for doc, hit in hits.items():
        coverage = min(1.0, sum(sources[w] for w in hit.matched) / wanted)
        relevance = (hit.score / top) * coverage
        item = kind_index.items[doc]
        similarity = fuzz.token_set_ratio(lowered, item.description.lower()) / 100
        out[doc] = (1 - STRING_SHARE) * relevance + STRING_SHARE * similarity * coverage
    return out


def _complexity(context: str) -> int:
    """+1 for a query that reads as complex work, -1 for simple work, 0 when it does not say."""
    found = set(words(context))
    return (1 if found & _COMPLEX else 0) - (1 if found & _SIMPLE else 0)


def _model_nudge(item: Definition, complexity: int, s: Scored) -> float:
    """The seed's rule: a stronger model for complex work, Haiku for simple work; a tie-breaker, no more."""
    if complexity > 0 and item.model in ("opus", "sonnet"):
        s.why.append(f"model {item.model} suits complex work")
        return MODEL_NUDGE if item.model == "opus" else MODEL_NUDGE / 2
    if complexity < 0 and item.model == "haiku":
        s.why.append("model haiku suits simple work")
        return MODEL_NUDGE
    return 0.0
