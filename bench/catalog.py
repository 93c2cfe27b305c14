"""The catalog toolset on 1,000 generated definitions: query latency on a cache miss and a hit (in-process and
through the plain JSON-RPC API of a real server), startup to healthy, and the memory the catalog adds.

    .venv/bin/python bench/catalog.py [--rounds 2] [--quick] [--json out.json] [--profile 25] [--keep DIR]

The corpus (700 agents in 20 plugins, 200 skills, 100 workflows, a role registry) and the query set are generated
from a fixed seed, so every run measures the same work. The in-process query figures are set against two plain
references over the same documents in the same run: ``rank_bm25``'s ``BM25Okapi`` (which scores every document for
every query) and a rapidfuzz linear scan (``token_set_ratio`` against every document's name, tags and
description). ``rank_bm25`` is not a Tandem dependency: ``.venv/bin/pip install rank-bm25`` first.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import re
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rank_bm25 import BM25Okapi
from rapidfuzz import fuzz, process

from rawhttp import HttpConnection
from servers import HttpServer
from tandem.core.catalog_settings import CatalogSettings
from tandem.toolsets.catalog.definitions import Definition
from tandem.toolsets.catalog.indexer import Indexer, KindIndex
from tandem.toolsets.catalog.service import Catalog

SEED = 20260
GOALS = {"miss_ms": 5.0, "hit_ms": 1.0, "index_s": 0.5}
SEED_TARGETS = {"miss_ms": 50.0, "hit_ms": 10.0}
HEALTH_TIMEOUT_S = 60.0
JSON_HEADERS = "Content-Type: application/json\r\n"

# -- the corpus ---------------------------------------------------------------------------------------------------

PLUGINS: dict[str, tuple[str, ...]] = {
    "frontend-frameworks": (
        "react vue angular svelte nextjs nuxt remix solidjs astro tailwind redux webpack vite storybook".split()
    ),
    "backend-api": "fastapi django flask express nestjs spring rails laravel graphql grpc openapi celery".split(),
    "languages": "python typescript javascript golang rust java kotlin csharp cpp ruby php scala elixir".split(),
    "devops-cloud": "kubernetes docker terraform ansible helm aws gcp azure pulumi argocd jenkins nginx istio".split(),
    "data-ml": "pandas spark airflow dbt pytorch tensorflow sklearn mlflow jupyter xgboost huggingface polars".split(),
    "databases": "postgres mysql mongodb redis cassandra elasticsearch sqlite dynamodb clickhouse neo4j".split(),
    "security-quality": "owasp sast pentest oauth jwt secrets sso vulnerability compliance encryption audit".split(),
    "testing": "pytest jest playwright cypress selenium vitest junit mocha k6 locust contract-testing".split(),
    "mobile": "ios android flutter react-native swiftui jetpack-compose ionic expo kotlin-multiplatform".split(),
    "docs-product": "documentation readme api-docs changelog prd user-stories roadmap technical-writing adr".split(),
    "observability": "prometheus grafana opentelemetry jaeger datadog loki sentry alerting slo tracing".split(),
    "messaging": "kafka rabbitmq nats pulsar sqs pubsub event-sourcing cqrs mqtt".split(),
    "ai-llm": "llm prompt-engineering rag embeddings langchain vector-search fine-tuning evaluation openai".split(),
    "blockchain": "solidity ethereum web3 smart-contracts hardhat foundry defi solana wallet".split(),
    "game-dev": "unity unreal godot shaders physics multiplayer opengl vulkan ecs".split(),
    "payments-commerce": "stripe paypal billing subscriptions checkout invoicing tax shopify pci fraud".split(),
    "accessibility-i18n": "wcag aria screen-reader i18n localization rtl translation color-contrast unicode".split(),
    "performance": "profiling caching cdn load-testing benchmarking memory-leaks latency concurrency".split(),
    "architecture": "microservices ddd event-driven serverless api-gateway service-mesh hexagonal cqrs-design".split(),
    "embedded-iot": "embedded-c rtos arduino raspberry-pi firmware zephyr can-bus modbus fpga bluetooth".split(),
}
"""Plugin -> the technologies its definitions are about (each technology in one plugin only)."""

SUBJECTS: dict[str, tuple[str, ...]] = {
    "frontend-frameworks": ("components", "state management", "server-side rendering", "design systems", "forms"),
    "backend-api": ("endpoints", "background jobs", "request validation", "api versioning", "pagination"),
    "languages": ("type systems", "idiomatic code", "packaging", "concurrency primitives", "build tooling"),
    "devops-cloud": ("deployments", "clusters", "infrastructure as code", "ci pipelines", "release automation"),
    "data-ml": ("data pipelines", "model training", "feature engineering", "batch jobs", "experiment tracking"),
    "databases": ("schemas", "query plans", "indexes", "replication", "backups and restores"),
    "security-quality": ("threat models", "dependency audits", "access control", "code review", "hardening"),
    "testing": ("unit tests", "end-to-end tests", "flaky tests", "test fixtures", "coverage reports"),
    "mobile": ("mobile apps", "offline sync", "push notifications", "app store releases", "native modules"),
    "docs-product": ("user guides", "release notes", "requirements", "onboarding docs", "architecture records"),
    "observability": ("dashboards", "alerts", "distributed traces", "log pipelines", "service level objectives"),
    "messaging": ("event streams", "consumers", "dead letter queues", "message schemas", "exactly-once delivery"),
    "ai-llm": ("prompts", "retrieval pipelines", "model evaluation", "agents", "token budgets"),
    "blockchain": ("smart contracts", "gas optimisation", "token standards", "on-chain audits", "wallets"),
    "game-dev": ("game loops", "rendering", "netcode", "level tools", "physics simulation"),
    "payments-commerce": ("payment flows", "refunds", "recurring billing", "tax rules", "checkout pages"),
    "accessibility-i18n": ("keyboard navigation", "screen reader support", "translations", "locale formats"),
    "performance": ("hot paths", "cache layers", "slow queries", "memory usage", "page load time"),
    "architecture": ("service boundaries", "system design", "migrations", "domain models", "scalability"),
    "embedded-iot": ("device drivers", "sensor data", "firmware updates", "low-power modes", "field buses"),
}
SUFFIXES = (
    "specialist developer engineer architect expert reviewer consultant tuner migrator auditor tester operator "
    "advisor builder"
).split()
VERBS = "Builds Designs Reviews Optimises Debugs Migrates Maintains Hardens Tests Scales Refactors Documents".split()
TASKS = (
    "performance tuning",
    "incident response",
    "greenfield projects",
    "legacy migrations",
    "code reviews",
    "production debugging",
    "cost reduction",
    "security fixes",
    "capacity planning",
    "upgrades between major versions",
)
TOOLS = "Read Write Edit Bash Grep Glob WebFetch WebSearch TodoWrite".split()
TOPICS = (
    "patterns best-practices checklist recipes migration-guide testing debugging performance security setup"
).split()
WORKFLOW_VERBS = "add fix audit migrate upgrade deploy review scaffold document benchmark harden release".split()
WORKFLOW_THINGS = "feature endpoint service pipeline module component integration config dashboard suite".split()


def _mistype(word: str, rng: random.Random) -> str:
    """One typing slip: two letters swapped, one dropped or one doubled (never at the first letter)."""
    at = rng.randrange(1, len(word) - 1)
    slip = rng.choice(("swap", "drop", "double"))
    if slip == "swap":
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    if slip == "drop":
        return word[:at] + word[at + 1 :]
    return word[:at] + word[at] + word[at:]


def _sentence(rng: random.Random, plugin: str, tech: str) -> str:
    techs, subjects = PLUGINS[plugin], SUBJECTS[plugin]
    other = rng.choice([t for t in techs if t != tech])
    subject = rng.choice(subjects)
    return rng.choice(
        (
            f"Prefer small, reviewable changes to the {subject} and keep {tech} upgrades separate from features.",
            f"Measure before changing {subject}; record the numbers in the pull request.",
            f"When {tech} meets {other}, agree the contract first and test it on both sides.",
            f"Check the {subject} against the team's conventions, then against the {tech} documentation.",
            f"Write down every assumption about {subject} that the next engineer would need to know.",
            f"Ask for the failing case first; reproduce it with {tech} before proposing a fix.",
            f"Keep secrets, tokens and personal data out of logs, fixtures and {subject}.",
            f"Explain trade-offs in plain words and name the option you would pick for {subject}.",
        )
    )


def _body(rng: random.Random, plugin: str, tech: str, title: str, agents: list[str] | None = None) -> str:
    steps = []
    for n in range(1, rng.randint(4, 9) + 1):
        line = _sentence(rng, plugin, tech)
        if agents:
            line = f"{agents[(n - 1) % len(agents)]} takes this step: {line[0].lower()}{line[1:]}"
        steps.append(f"{n}. {line}")
    parts = [f"# {title}", "", *steps, "", "## Checklist", ""]
    parts += [f"- {_sentence(rng, plugin, tech)}" for _ in range(rng.randint(3, 8))]
    for _ in range(rng.randint(0, 4)):
        parts += ["", " ".join(_sentence(rng, plugin, tech) for _ in range(rng.randint(3, 6)))]
    return "\n".join(parts) + "\n"


@dataclass
class Corpus:
    root: Path
    agents: list[dict[str, Any]] = field(default_factory=list)
    skills: list[dict[str, Any]] = field(default_factory=list)
    workflows: list[dict[str, Any]] = field(default_factory=list)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    patterns: list[dict[str, Any]] = field(default_factory=list)
    bytes: int = 0

    @property
    def definitions(self) -> int:
        return len(self.agents) + len(self.skills) + len(self.workflows)


def _write(corpus: Corpus, relative: str, front: list[str], body: str) -> None:
    path = corpus.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(["---", *front, "---", body])
    path.write_text(text, encoding="utf-8")
    corpus.bytes += len(text.encode())


def _listed(rng: random.Random, values: list[str]) -> str:
    return f"[{', '.join(values)}]" if rng.random() < 0.7 else ", ".join(values)


def generate(root: Path, agents: int = 700, skills: int = 200, workflows: int = 100) -> Corpus:
    """Agent, skill and workflow files with varied frontmatter (as found in real plugin collections) under
    ``plugins/<plugin>/``, a role registry, and the orchestration patterns a client has stored."""
    rng = random.Random(SEED)
    corpus = Corpus(root)
    plugins = list(PLUGINS)
    names = [(p, f"{t}-{s}") for p in plugins for t in PLUGINS[p] for s in SUFFIXES]
    rng.shuffle(names)
    per_plugin: dict[str, list[str]] = {p: [] for p in plugins}
    for plugin, name in sorted(names[:agents], key=lambda pn: plugins.index(pn[0])):
        tech = next(t for t in PLUGINS[plugin] if name.startswith(f"{t}-"))
        others = rng.sample([t for t in PLUGINS[plugin] if t != tech], k=rng.randint(2, 4))
        subject, task = rng.choice(SUBJECTS[plugin]), rng.choice(TASKS)
        description = (
            f"{rng.choice(VERBS)} {subject} with {tech}, {others[0]} and {others[1]}. "
            f"Use for {task} and {rng.choice(SUBJECTS[plugin])}."
        )
        if rng.random() < 0.03:  # the classic breakage: an unquoted ': ' in a value (repaired by the reader)
            description = f"Expert in {tech}: {subject} and {task}"
        front = [] if rng.random() < 0.08 else [f"name: {name}"]
        front.append(f"description: {description}")
        model = rng.choices(["sonnet", "opus", "haiku", "inherit", None], weights=[40, 20, 20, 5, 15])[0]
        if model:
            front.append(f"model: {model}")
        capabilities = [tech, *others[: rng.randint(1, 3)]]
        shape = rng.random()
        if shape < 0.72:
            front.append(f"capabilities: {_listed(rng, capabilities)}")
        elif shape < 0.85:
            front.append(f"tags: {_listed(rng, capabilities)}")
        if rng.random() < 0.85:
            front.append(f"tools: {_listed(rng, rng.sample(TOOLS, k=rng.randint(2, 6)))}")
        _write(corpus, f"plugins/{plugin}/agents/{name}.md", front, _body(rng, plugin, tech, name))
        corpus.agents.append({"name": name, "plugin": plugin, "tech": tech, "capabilities": capabilities})
        per_plugin[plugin].append(name)
    techs = [(p, t) for p in plugins for t in PLUGINS[p]]
    skill_names = rng.sample([(p, t, topic) for p, t in techs for topic in TOPICS], k=skills)
    for plugin, tech, topic in skill_names:
        name = f"{tech}-{topic}"
        subject = rng.choice(SUBJECTS[plugin])
        keywords = [tech, *rng.sample([t for t in PLUGINS[plugin] if t != tech], k=2), topic]
        front = [
            f"name: {name}",
            f"description: {topic.replace('-', ' ').capitalize()} for {subject} in {tech} projects.",
            f"category: {plugin.split('-')[0]}",
        ]
        if rng.random() < 0.8:
            front.append(f"keywords: {_listed(rng, keywords)}")
        nested = rng.random() < 0.8
        relative = f"plugins/{plugin}/skills/{name}/SKILL.md" if nested else f"plugins/{plugin}/skills/{name}.md"
        _write(corpus, relative, front, _body(rng, plugin, tech, name))
        corpus.skills.append({"name": name, "plugin": plugin, "tech": tech, "subject": subject, "topic": topic})
    workflow_names = rng.sample([(p, v, t) for p, t in techs for v in WORKFLOW_VERBS], k=workflows)
    for plugin, verb, tech in workflow_names:
        thing = rng.choice(WORKFLOW_THINGS)
        name = f"{verb}-{tech}-{thing}"
        crew = rng.sample(per_plugin[plugin], k=min(len(per_plugin[plugin]), rng.randint(2, 4)))
        front = [
            f"description: {verb.capitalize()} a {tech} {thing} end to end - plan, change, test and document it",
            f'argument-hint: "<{thing} name> [--dry-run]"',
        ]
        if rng.random() < 0.7:
            front.append(f"agents: {_listed(rng, crew)}")
        _write(corpus, f"plugins/{plugin}/commands/{name}.md", front, _body(rng, plugin, tech, name, crew))
        corpus.workflows.append({"name": name, "plugin": plugin, "tech": tech, "verb": verb, "thing": thing})
    for plugin in plugins:
        for suffix in rng.sample(("developer", "engineer", "reviewer"), k=2):
            crew = rng.sample(per_plugin[plugin], k=4)
            role = f"{plugin.split('-')[0]}_{suffix}"
            corpus.roles[role] = {"primary": crew[0], "fallbacks": crew[1:], "plugin": plugin}
    registry = ["# Generated role registry.", "roles:"]
    for role, entry in corpus.roles.items():
        registry += [
            f"  {role}:",
            f"    primary: {entry['primary']}",
            f"    fallbacks: [{', '.join(entry['fallbacks'])}]",
            f"    capabilities: [{', '.join(rng.sample(PLUGINS[entry['plugin']], k=3))}]",
            f"    model: {rng.choice(['sonnet', 'opus'])}",
            f"    use_when: Work on {', '.join(rng.sample(SUBJECTS[entry['plugin']], k=2))}",
        ]
    (root / ".claude").mkdir(parents=True, exist_ok=True)
    (root / ".claude" / "agent-registry.yml").write_text("\n".join(registry) + "\n", encoding="utf-8")
    for workflow in rng.sample(corpus.workflows, k=60):
        crew = rng.sample(per_plugin[workflow["plugin"]], k=3)
        goal = f"{workflow['verb']} the {workflow['tech']} {workflow['thing']} and ship it"
        corpus.patterns.append({"goal": goal, "agent_sequence": crew})
    return corpus


# -- the queries --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    method: str
    group: str
    params: dict[str, Any]

    @property
    def text(self) -> str:
        """The query as one string, for the references (which know no roles, tags or fields)."""
        values = [self.params.get(k) for k in ("capability", "role", "context", "goal", "category")]
        return " ".join(str(v).replace("_", " ") for v in values if v)


def queries(corpus: Corpus, scale: float = 1.0) -> list[Query]:
    """Distinct queries of every kind a client sends, each group ``scale`` times its full size."""
    rng = random.Random(SEED + 1)
    out: list[Query] = []

    def size(n: int) -> int:
        return max(3, round(n * scale))

    tags = sorted({c for a in corpus.agents for c in a["capabilities"]})
    for tag in rng.sample(tags, k=size(60)):
        out.append(Query("queryAgents", "capability", {"capability": tag}))
    long_tags = [t for t in tags if len(t) >= 6 and "-" not in t]
    for tag in rng.sample(long_tags, k=size(50)):
        slip = _mistype(tag, rng)
        if slip not in tags:
            out.append(Query("queryAgents", "misspelled", {"capability": slip}))
    plugins = list(PLUGINS)
    for _ in range(size(60)):
        plugin = rng.choice(plugins)
        tech, other = rng.sample(PLUGINS[plugin], k=2)
        subject, task = rng.choice(SUBJECTS[plugin]), rng.choice(TASKS)
        context = rng.choice(
            (
                f"we need help with {task} on our {tech} {subject}",
                f"the {subject} built on {tech} and {other} got slow after the last release",
                f"review the {tech} {subject} before we go to production",
                f"migrate {subject} from {other} to {tech}",
            )
        )
        if rng.random() < 0.2:
            context = context.replace(tech, _mistype(tech, rng)) if len(tech) >= 5 else context
        out.append(Query("queryAgents", "context", {"context": context}))
    roles = list(corpus.roles)
    for role in roles:
        out.append(Query("queryAgents", "role", {"role": role}))
    for role in rng.sample(roles, k=size(15)):
        out.append(Query("queryAgents", "role misspelled", {"role": _mistype(role, rng)}))
    for role in rng.sample(roles, k=size(20)):
        plugin = corpus.roles[role]["plugin"]
        context = f"{rng.choice(TASKS)} for the {rng.choice(SUBJECTS[plugin])}"
        out.append(Query("queryAgents", "role + context", {"role": role, "context": context}))
    for agent in rng.sample(corpus.agents, k=size(30)):
        context = f"{rng.choice(TASKS)} of {rng.choice(SUBJECTS[agent['plugin']])}"
        out.append(Query("queryAgents", "capability + context", {"capability": agent["tech"], "context": context}))
    for skill in rng.sample(corpus.skills, k=size(100)):
        context = f"{skill['topic'].replace('-', ' ')} for {skill['subject']} with {skill['tech']}"
        params: dict[str, Any] = {"context": context}
        if rng.random() < 0.2:
            params["category"] = skill["plugin"].split("-")[0]
        out.append(Query("querySkills", "context", params))
    for workflow in rng.sample(corpus.workflows, k=size(100)):
        goal = f"{workflow['verb']} a new {workflow['tech']} {workflow['thing']} for the team"
        out.append(Query("queryWorkflows", "goal", {"goal": goal}))
    for pattern in rng.sample(corpus.patterns, k=size(50)):
        goal = pattern["goal"].replace("ship", "deliver")
        out.append(Query("getOrchestrationPattern", "stored goal", {"goal": goal}))
    for workflow in rng.sample(corpus.workflows, k=size(50)):
        goal = f"plan how to {workflow['verb']} our {workflow['tech']} {rng.choice(SUBJECTS[workflow['plugin']])}"
        out.append(Query("getOrchestrationPattern", "proposed", {"goal": goal}))
    distinct = {(q.method, json.dumps(q.params, sort_keys=True)): q for q in out}
    return list(distinct.values())


# -- the references -----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class Reference:
    """The straightforward ways to answer the same queries: BM25 scoring every document (rank_bm25) and a fuzzy
    string scan of every document (rapidfuzz), over the same fields Tandem indexes; top 5 as summaries."""

    def __init__(self, items: list[Definition]) -> None:
        self.items = items
        documents = [
            " ".join([d.name.replace("-", " "), *d.capabilities, d.description, d.category, *d.steps, d.body])
            for d in items
        ]
        self.bm25 = BM25Okapi([tokens(text) for text in documents])
        self.short = [" ".join([d.name.replace("-", " "), *d.capabilities, d.description]) for d in items]

    def bm25_top(self, text: str, limit: int = 5) -> list[dict[str, Any]]:
        scores = self.bm25.get_scores(tokens(text))
        return [self.items[i].summary() for i in np.argsort(-scores)[:limit] if scores[i] > 0]

    def fuzzy_top(self, text: str, limit: int = 5) -> list[dict[str, Any]]:
        found = process.extract(text.lower(), self.short, scorer=fuzz.token_set_ratio, limit=limit, processor=str.lower)
        return [self.items[i].summary() for _, _, i in found]


def references(catalog: Catalog) -> dict[str, Reference]:
    kinds = catalog.current.kinds
    by_kind = {kind: Reference(index.items) for kind, index in kinds.items()}
    return {
        "queryAgents": by_kind["agent"],
        "querySkills": by_kind["skill"],
        "queryWorkflows": by_kind["workflow"],
        "getOrchestrationPattern": by_kind["workflow"],
    }


# -- measuring ----------------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nearest rank; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Figures:
    """Latencies in ms of one method (or one group of its queries)."""

    n: int
    miss: list[float] = field(default_factory=list, repr=False)
    hit: list[float] = field(default_factory=list, repr=False)
    bm25: list[float] = field(default_factory=list, repr=False)
    fuzzy: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"n": self.n}
        for name in ("miss", "hit", "bm25", "fuzzy"):
            values = getattr(self, name)
            if values:
                out[f"{name}_p50_ms"] = round(pct(values, 0.5), 4)
                out[f"{name}_p95_ms"] = round(pct(values, 0.95), 4)
        return out


def _call(catalog: Catalog, query: Query) -> dict[str, Any]:
    p = query.params
    if query.method == "queryAgents":
        return catalog.query_agents(p.get("capability"), p.get("role"), p.get("context"))
    if query.method == "querySkills":
        return catalog.query_skills(p.get("context"), p.get("category"))
    if query.method == "queryWorkflows":
        return catalog.query_workflows(p["goal"])
    return catalog.get_orchestration_pattern(p["goal"])


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return (time.perf_counter() - started) * 1000, value


@dataclass
class StartFigures:
    start_ms: float
    build_ms: float
    kind_index_ms: float
    unchanged_reindex_ms: float
    index_heap_mb: float
    index_heap_peak_mb: float


def open_catalog(corpus: Corpus, data: Path) -> tuple[Catalog, float]:
    started = time.perf_counter()
    catalog = Catalog(corpus.root, data, CatalogSettings()).start(background=False)
    elapsed = (time.perf_counter() - started) * 1000
    for pattern in corpus.patterns:
        catalog.store_pattern(pattern["goal"], pattern["agent_sequence"])
    return catalog, elapsed


def measure_start(corpus: Corpus, scratch: Path, rounds: int) -> StartFigures:
    """``Catalog.start`` on the corpus (a fresh database each time), best of ``rounds``; its parts; the heap the
    index holds (tracemalloc)."""
    starts, builds, kind_builds, reindexes = [], [], [], []
    for n in range(rounds):
        catalog, start_ms = open_catalog(corpus, scratch / f"start-{n}")
        starts.append(start_ms)
        builds.append(_timed(Indexer(corpus.root, CatalogSettings()).build)[0])
        items = [catalog.current.kinds[kind].items for kind in ("agent", "skill", "workflow")]
        kind_builds.append(sum(_timed(lambda items=kind_items: KindIndex.build(items))[0] for kind_items in items))
        reindexes.append(_timed(catalog.reindex)[0])
        catalog.close()
    tracemalloc.start()
    index = Indexer(corpus.root, CatalogSettings()).build()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del index
    return StartFigures(min(starts), min(builds), min(kind_builds), min(reindexes), held / 2**20, peak / 2**20)


def measure_queries(
    corpus: Corpus, query_set: list[Query], scratch: Path, rounds: int, profile: int
) -> tuple[dict[str, Figures], list[str]]:
    """Every query once on a cold answer cache (each is distinct: a miss), then three times from the cache (hits),
    and the references on the same query; a fresh catalog per round, the round with the lowest miss p50 kept."""
    problems: list[str] = []
    best: dict[str, Figures] = {}
    for n in range(rounds):
        catalog, _ = open_catalog(corpus, scratch / f"queries-{n}")
        refs = references(catalog)
        rows: dict[str, Figures] = {}

        def row(key: str, rows: dict[str, Figures] = rows) -> Figures:
            return rows.setdefault(key, Figures(0))

        profiler = cProfile.Profile() if profile and n == 0 else None
        for query in query_set:
            if profiler:
                profiler.enable()
            ms, answer = _timed(lambda query=query, catalog=catalog: _call(catalog, query))
            if profiler:
                profiler.disable()
            if answer["cache_hit"]:
                problems.append(f"{query.method} {query.params}: a hit on its first call")
            for key in (f"{query.method} / {query.group}", query.method, "all"):
                row(key).n += 1
                row(key).miss.append(ms)
        for _ in range(3):
            for query in query_set:
                ms, answer = _timed(lambda query=query, catalog=catalog: _call(catalog, query))
                if not answer["cache_hit"]:
                    problems.append(f"{query.method} {query.params}: a miss on a repeated call")
                for key in (f"{query.method} / {query.group}", query.method, "all"):
                    row(key).hit.append(ms)
        for query in query_set:
            ref = refs[query.method]
            bm25_ms, _ = _timed(lambda ref=ref, query=query: ref.bm25_top(query.text))
            fuzzy_ms, _ = _timed(lambda ref=ref, query=query: ref.fuzzy_top(query.text))
            for key in (f"{query.method} / {query.group}", query.method, "all"):
                row(key).bm25.append(bm25_ms)
                row(key).fuzzy.append(fuzzy_ms)
        catalog.close()
        if profiler:
            stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime")
            print(f"\ncProfile of the {len(query_set)} cache misses, by own time:", file=sys.stderr)
            stats.print_stats(profile)
        for key, figures in rows.items():
            if key not in best or pct(figures.miss, 0.5) < pct(best[key].miss, 0.5):
                best[key] = figures
        print(f"  in-process round {n + 1}: miss p50 {pct(rows['all'].miss, 0.5):.3f} ms", file=sys.stderr)
    return best, list(dict.fromkeys(problems))[:10]


# -- a real server ------------------------------------------------------------------------------------------------


def serve_command(workspace: Path, toolsets: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tandem",
        "serve",
        "--http",
        "--port",
        "0",
        "--toolsets",
        toolsets,
        "--log-level",
        "warning",
        "--workspace",
        str(workspace),
    ]


def _address(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host.strip("[]"), int(port)


async def _health(url: str) -> dict[str, Any]:
    connection = HttpConnection(*_address(url))
    await connection.connect()
    try:
        response = await connection.request("GET", "/health", "")
        return json.loads(response.body)
    finally:
        await connection.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class ServerFigures:
    healthy_ms: float
    healthy_empty_ms: float
    rss_mb: float
    rss_without_catalog_mb: float
    http: dict[str, Figures]


def _start_until_healthy(workspace: Path, toolsets: str, agents: int) -> tuple[HttpServer, float]:
    """A fresh ``tandem serve --http`` (no data directory yet) and the ms from its launch until ``GET /health``
    answers with the catalog's index in place."""
    shutil.rmtree(workspace / ".tandem", ignore_errors=True)
    started = time.perf_counter()
    server = HttpServer(f"tandem ({toolsets})", serve_command(workspace, toolsets))
    deadline = started + HEALTH_TIMEOUT_S
    while True:
        try:
            health = asyncio.run(_health(server.url))
        except (OSError, ValueError, asyncio.IncompleteReadError):
            health = {}
        ready = "catalog" not in toolsets or health.get("indexes", {}).get("agents") == agents
        if health and ready:
            return server, (time.perf_counter() - started) * 1000
        if time.perf_counter() > deadline or server.process.poll() is not None:
            server.stop()
            raise RuntimeError(f"{server.name} never became healthy:\n" + "\n".join(server.lines[-20:]))
        time.sleep(0.005)


async def _http_queries(url: str, query_set: list[Query], problems: list[str]) -> dict[str, Figures]:
    """Every query over one keep-alive connection as a JSON-RPC call on ``POST /``: once (misses), then three
    times more (hits); request written to answer read."""
    connection = HttpConnection(*_address(url))
    await connection.connect()
    rows: dict[str, Figures] = {}
    try:
        for repeat in range(4):
            for number, query in enumerate(query_set):
                body = json.dumps({"jsonrpc": "2.0", "method": query.method, "params": query.params, "id": number})
                started = time.perf_counter()
                response = await connection.request("POST", "/", JSON_HEADERS, body.encode())
                ms = (time.perf_counter() - started) * 1000
                answer = json.loads(response.body)
                if "result" not in answer:
                    problems.append(f"HTTP {query.method} {query.params}: {answer.get('error')}")
                    continue
                if answer["result"]["cache_hit"] != (repeat > 0):
                    problems.append(f"HTTP {query.method} {query.params}: cache_hit {answer['result']['cache_hit']}")
                for key in (query.method, "all"):
                    figures = rows.setdefault(key, Figures(0))
                    if repeat == 0:
                        figures.n += 1
                        figures.miss.append(ms)
                    else:
                        figures.hit.append(ms)
    finally:
        await connection.close()
    return rows


def _store_patterns(url: str, corpus: Corpus) -> None:
    async def store() -> None:
        connection = HttpConnection(*_address(url))
        await connection.connect()
        try:
            for number, pattern in enumerate(corpus.patterns):
                body = json.dumps({"jsonrpc": "2.0", "method": "storePattern", "params": pattern, "id": number})
                response = await connection.request("POST", "/", JSON_HEADERS, body.encode())
                if "result" not in json.loads(response.body):
                    raise RuntimeError(f"storePattern failed: {response.body[:300]!r}")
        finally:
            await connection.close()

    asyncio.run(store())


def measure_server(
    corpus: Corpus, query_set: list[Query], empty: Path, rounds: int, problems: list[str]
) -> ServerFigures:
    """Start to healthy (the corpus vs an empty workspace, best of ``rounds``), the resident memory of a server
    with and without the catalog after the same start, and the query latencies through HTTP."""
    agents = len(corpus.agents)
    healthy, healthy_empty, rss, rss_bare = [], [], [], []
    http: dict[str, Figures] = {}
    for n in range(rounds):
        server, ms = _start_until_healthy(corpus.root, "server,catalog", agents)
        try:
            healthy.append(ms)
            if n == 0:
                _store_patterns(server.url, corpus)
                rows = asyncio.run(_http_queries(server.url, query_set, problems))
                http = rows
            rss.append(rss_mb(server.pid))
        finally:
            server.stop()
        server, ms = _start_until_healthy(empty, "server,catalog", 0)
        server.stop()
        healthy_empty.append(ms)
        server, _ = _start_until_healthy(corpus.root, "server", agents)
        rss_bare.append(rss_mb(server.pid))
        server.stop()
        print(f"  server round {n + 1}: healthy in {ms:.0f} ms (empty) / {healthy[-1]:.0f} ms", file=sys.stderr)
    return ServerFigures(min(healthy), min(healthy_empty), min(rss), min(rss_bare), http)


# -- the report ---------------------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def report(
    corpus: Corpus,
    query_set: list[Query],
    start: StartFigures,
    rows: dict[str, Figures],
    server: ServerFigures | None,
    problems: list[str],
) -> dict[str, Any]:
    overall = rows["all"]
    miss, hit = pct(overall.miss, 0.5), pct(overall.hit, 0.5)
    result: dict[str, Any] = {
        "corpus": {
            "agents": len(corpus.agents),
            "skills": len(corpus.skills),
            "workflows": len(corpus.workflows),
            "roles": len(corpus.roles),
            "patterns": len(corpus.patterns),
            "bytes": corpus.bytes,
        },
        "queries": len(query_set),
        "start": start.__dict__,
        "in_process": {key: figures.summary() for key, figures in sorted(rows.items())},
        "goals": {
            "miss_p50_ms": {"measured": miss, "goal": GOALS["miss_ms"], "seed": SEED_TARGETS["miss_ms"]},
            "hit_p50_ms": {"measured": hit, "goal": GOALS["hit_ms"], "seed": SEED_TARGETS["hit_ms"]},
            "start_s": {"measured": start.start_ms / 1000, "goal": GOALS["index_s"]},
        },
        "ratios": {
            "bm25_p50_over_miss_p50": pct(overall.bm25, 0.5) / miss,
            "fuzzy_p50_over_miss_p50": pct(overall.fuzzy, 0.5) / miss,
            "miss_p50_over_hit_p50": miss / hit,
        },
        "problems": problems,
    }
    if server:
        result["server"] = {
            "healthy_ms": server.healthy_ms,
            "healthy_empty_ms": server.healthy_empty_ms,
            "healthy_added_ms": server.healthy_ms - server.healthy_empty_ms,
            "rss_mb": server.rss_mb,
            "rss_without_catalog_mb": server.rss_without_catalog_mb,
            "rss_added_mb": server.rss_mb - server.rss_without_catalog_mb,
            "http": {key: figures.summary() for key, figures in sorted(server.http.items())},
        }
    return result


def print_report(result: dict[str, Any], rows: dict[str, Figures]) -> None:
    c = result["corpus"]
    print(
        f"Corpus: {c['agents']} agents, {c['skills']} skills, {c['workflows']} workflows "
        f"({c['agents'] + c['skills'] + c['workflows']} definitions, {c['bytes'] / 1024:.0f} KiB), {c['roles']} roles, "
        f"{c['patterns']} stored patterns; {result['queries']} distinct queries.\n"
    )
    print("In-process latency, ms (p50 / p95); references answer the same query text over the same documents:\n")
    print("| queries | n | miss | hit | rank_bm25 | rapidfuzz scan | bm25 / miss |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key in sorted(rows, key=lambda k: (k != "all", k)):
        f = rows[key]
        m, h, b, z = (pct(getattr(f, name), 0.5) for name in ("miss", "hit", "bm25", "fuzzy"))
        m95, h95, b95, z95 = (pct(getattr(f, name), 0.95) for name in ("miss", "hit", "bm25", "fuzzy"))
        print(
            f"| {key} | {f.n} | {_ms(m)} / {_ms(m95)} | {_ms(h)} / {_ms(h95)} | {_ms(b)} / {_ms(b95)} "
            f"| {_ms(z)} / {_ms(z95)} | {b / m:.1f}x |"
        )
    s = result["start"]
    print(
        f"\nCatalog.start (fresh database, index built): {s['start_ms']:.0f} ms; of which the indexer "
        f"{s['build_ms']:.0f} ms (search indexes {s['kind_index_ms']:.0f} ms); re-index with nothing changed "
        f"{s['unchanged_reindex_ms']:.1f} ms; the index holds {s['index_heap_mb']:.1f} MiB of Python heap "
        f"(peak {s['index_heap_peak_mb']:.1f} MiB while building)."
    )
    if "server" in result:
        sv = result["server"]
        print(
            f"\nReal server: healthy {sv['healthy_ms']:.0f} ms after launch with the corpus vs "
            f"{sv['healthy_empty_ms']:.0f} ms with an empty workspace (+{sv['healthy_added_ms']:.0f} ms); "
            f"RSS {sv['rss_mb']:.1f} MiB with the catalog vs {sv['rss_without_catalog_mb']:.1f} MiB without "
            f"(+{sv['rss_added_mb']:.1f} MiB)."
        )
        print("\nThrough HTTP (JSON-RPC on POST /, one keep-alive connection), ms (p50 / p95):\n")
        print("| method | n | miss | hit |")
        print("|---|---:|---:|---:|")
        for key, figures in sorted(sv["http"].items(), key=lambda kv: (kv[0] != "all", kv[0])):
            print(
                f"| {key} | {figures['n']} | {_ms(figures['miss_p50_ms'])} / {_ms(figures['miss_p95_ms'])} "
                f"| {_ms(figures['hit_p50_ms'])} / {_ms(figures['hit_p95_ms'])} |"
            )
    print("\nGoals (p50):")
    for name, goal in result["goals"].items():
        seed = f", seed target {goal['seed']}" if "seed" in goal else ""
        verdict = "met" if goal["measured"] < goal["goal"] else "MISSED"
        print(f"  {name}: {goal['measured']:.3f} (goal < {goal['goal']}{seed}) {verdict}")
    if result["problems"]:
        print("\nProblems:")
        for problem in result["problems"]:
            print(f"  {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each measurement; the best is kept")
    parser.add_argument("--quick", action="store_true", help="a fifth of the queries, one round")
    parser.add_argument("--no-server", action="store_true", help="in-process figures only")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions of the misses (cProfile)")
    parser.add_argument("--keep", type=Path, help="generate the corpus here and keep it")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else max(1, args.rounds)
    with tempfile.TemporaryDirectory(prefix="tandem-bench-catalog-") as scratch_name:
        scratch = Path(scratch_name)
        # No ~/.claude of whoever runs this: the server and the in-process catalog see the corpus only.
        os.environ["HOME"] = str(scratch / "home")
        (scratch / "home").mkdir()
        root = args.keep or scratch / "corpus"
        shutil.rmtree(root, ignore_errors=True)
        print(f"generating the corpus in {root} ...", file=sys.stderr)
        corpus = generate(root)
        query_set = queries(corpus, 0.2 if args.quick else 1.0)
        print(f"{corpus.definitions} definitions, {len(query_set)} queries", file=sys.stderr)
        start = measure_start(corpus, scratch, rounds)
        rows, problems = measure_queries(corpus, query_set, scratch, rounds, args.profile)
        server = None
        if not args.no_server:
            empty = scratch / "empty"
            empty.mkdir()
            server = measure_server(corpus, query_set, empty, rounds, problems)
        result = report(corpus, query_set, start, rows, server, problems)
    result["python"] = sys.version.split()[0]
    print_report(result, rows)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
