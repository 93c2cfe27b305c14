"""``tandem catalog savings``: what answering on demand saves over listing everything in every prompt, counted
with a real tokenizer.

Without the catalog a client such as Claude Code carries one line per agent, skill and slash command in its system
prompt on every turn (``- name: description``). With it, the client carries the catalog's tool definitions on every
turn and reads an answer when it asks. Both sides are counted exactly (tiktoken's encodings, offline): the listing
as those lines, each tool as the ``name`` / ``description`` / ``input_schema`` a model is given, each answer as the
compact JSON text the tool returns. The comparison assumes one query per turn; a turn that asks nothing saves
the whole listing less the tool definitions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tandem.core.tokens import DEFAULT_ENCODING, EncodingName, count_tokens
from tandem.toolsets.catalog.service import Catalog, answer_text

DEFAULT_QUERIES = "savings_queries.yml"
"""The query set used when none is given: everyday coding tasks, so any workspace can be measured."""
KINDS = ("agent", "skill", "workflow")
_HEADINGS = {
    "agent": "Available agents (pick one by name):",
    "skill": "Available skills:",
    "workflow": "Available slash commands:",
}


class SavingsError(ValueError):
    """The query set is missing or malformed; the message says where."""


@dataclass(frozen=True)
class Query:
    kind: str
    capability: str | None = None
    role: str | None = None
    context: str | None = None

    @property
    def label(self) -> str:
        shown = [f"{name}={value!r}" for name, value in (("capability", self.capability), ("role", self.role)) if value]
        if self.context:
            shown.append(repr(self.context))
        return f"{self.kind}: {' '.join(shown)}"


@dataclass
class QueryCost:
    query: Query
    answer_tokens: int
    top: str | None


@dataclass
class Savings:
    encoding: str
    counts: dict[str, int]
    listing_tokens: int
    tool_count: int
    tool_tokens: int
    queries: list[QueryCost] = field(default_factory=list)

    @property
    def without_catalog(self) -> int:
        """Tokens over all the queries, one per turn, when the listing rides in every prompt."""
        return self.listing_tokens * len(self.queries)

    @property
    def with_catalog(self) -> int:
        """The same turns with the catalog: its tool definitions every turn, plus each answer."""
        return self.tool_tokens * len(self.queries) + sum(q.answer_tokens for q in self.queries)

    @property
    def saved_fraction(self) -> float:
        return 1 - self.with_catalog / self.without_catalog if self.without_catalog else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "indexed": self.counts,
            "listing_tokens_per_turn": self.listing_tokens,
            "catalog_tools": self.tool_count,
            "catalog_tool_tokens_per_turn": self.tool_tokens,
            "queries": [{"query": q.query.label, "answer_tokens": q.answer_tokens, "top": q.top} for q in self.queries],
            "total": {
                "queries": len(self.queries),
                "without_catalog": self.without_catalog,
                "with_catalog": self.with_catalog,
                "saved_tokens": self.without_catalog - self.with_catalog,
                "saved_percent": round(100 * self.saved_fraction, 1),
            },
        }


def load_queries(path: Path | None) -> list[Query]:
    """The query set in ``path`` (YAML: a list of ``{kind, capability?, role?, context?}``), else the default."""
    if path is None:
        text = resources.files("tandem.toolsets.catalog").joinpath(DEFAULT_QUERIES).read_text(encoding="utf-8")
        where = f"the built-in {DEFAULT_QUERIES}"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SavingsError(f"cannot read {path}: {exc.strerror or exc}") from None
        where = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SavingsError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(data, list) or not data:
        raise SavingsError(f"{where} must be a non-empty YAML list of queries")
    queries = []
    for number, item in enumerate(data, 1):
        if not isinstance(item, dict) or item.get("kind") not in KINDS:
            raise SavingsError(f"{where}: query {number} needs a kind of {', '.join(KINDS)}")
        texts = {}
        for name in ("capability", "role", "context", "goal"):
            value = item.get(name)
            if value is not None and not isinstance(value, str):
                raise SavingsError(f"{where}: query {number}: {name} must be text")
            texts[name] = value or None
        context = texts["context"] or texts["goal"]
        if item["kind"] == "agent" and not (texts["capability"] or texts["role"] or context):
            raise SavingsError(f"{where}: query {number} (agent) needs a capability, role or context")
        if item["kind"] != "agent" and not context:
            raise SavingsError(f"{where}: query {number} ({item['kind']}) needs a context")
        queries.append(Query(item["kind"], texts["capability"], texts["role"], context))
    return queries


def full_listing(catalog: Catalog) -> str:
    """The lines a client lists in its prompt for everything the catalog indexed."""
    sections = []
    for kind in KINDS:
        items = catalog.listing(kind)  # type: ignore[arg-type]
        if not items:
            continue
        prefix = "/" if kind == "workflow" else ""
        lines = [f"- {prefix}{d.name}: {' '.join(d.description.split())}" for d in items]
        sections.append("\n".join([_HEADINGS[kind], *lines]))
    return "\n\n".join(sections)


def tool_definitions(tools: list[Any]) -> list[dict[str, Any]]:
    """The catalog's tools as a model is given them: name, description, input schema."""
    return [{"name": t.name, "description": t.description, "input_schema": t.signature.input_schema} for t in tools]


def answer(catalog: Catalog, query: Query, limit: int) -> dict[str, Any]:
    if query.kind == "agent":
        return catalog.query_agents(query.capability, query.role, query.context, limit)
    if query.kind == "skill":
        return catalog.query_skills(query.context, None, limit)
    return catalog.query_workflows(query.context, limit)


def measure(
    catalog: Catalog,
    tools: list[Any],
    queries: list[Query],
    *,
    limit: int = 5,
    encoding: EncodingName = DEFAULT_ENCODING,
) -> Savings:
    definitions = tool_definitions(tools)
    savings = Savings(
        encoding=encoding,
        counts=catalog.current.counts(),
        listing_tokens=count_tokens(full_listing(catalog), encoding),
        tool_count=len(definitions),
        tool_tokens=count_tokens(json.dumps(definitions, ensure_ascii=False, separators=(",", ":")), encoding),
    )
    for query in queries:
        result = answer(catalog, query, limit)
        found = next((result[key] for key in ("agents", "skills", "workflows") if key in result), [])
        tokens = count_tokens(answer_text(result), encoding)
        savings.queries.append(QueryCost(query, tokens, found[0]["name"] if found else None))
    return savings


def report(savings: Savings) -> list[str]:
    """The figures as ``tandem catalog savings`` prints them."""
    counts = ", ".join(f"{n} {kind}" for kind, n in savings.counts.items())
    lines = [
        f"Full listing ({counts}): {savings.listing_tokens:,} tokens ({savings.encoding}), carried every turn",
        f"Catalog tools ({savings.tool_count} definitions): {savings.tool_tokens:,} tokens, carried every turn",
        "",
        f"{'answer':>7}  {'top answer':<32}  query",
    ]
    for cost in savings.queries:
        lines.append(f"{cost.answer_tokens:>7,}  {(cost.top or '(none)')[:32]:<32}  {cost.query.label}")
    total = savings.as_dict()["total"]
    verdict = "fewer" if total["saved_tokens"] >= 0 else "more"
    lines += [
        "",
        f"{total['queries']} queries, one per turn: {total['without_catalog']:,} tokens with the listing, "
        f"{total['with_catalog']:,} with the catalog ({abs(total['saved_percent']):g}% {verdict}).",
        f"Per turn: {savings.listing_tokens:,} listed vs {savings.tool_tokens:,} + "
        f"{(savings.with_catalog - savings.tool_tokens * len(savings.queries)) / max(len(savings.queries), 1):,.0f} "
        "(tools + the average answer).",
    ]
    return lines
