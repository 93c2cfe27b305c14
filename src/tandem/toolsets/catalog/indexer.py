"""Finding and reading definition files into an index, again only for the files that changed since last time."""

from __future__ import annotations

import glob
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.core.catalog_settings import CatalogSettings
from tandem.toolsets.catalog.definitions import (
    Definition,
    Kind,
    Role,
    link_workflow_agents,
    read_definition,
    read_registry,
)
from tandem.toolsets.catalog.frontmatter import Diagnostic
from tandem.toolsets.catalog.text_index import TextIndex, terms

logger = logging.getLogger("tandem.catalog")

KINDS: tuple[Kind, ...] = ("agent", "skill", "workflow")
FIELD_WEIGHTS = {"name": 3.0, "capabilities": 3.0, "description": 2.0, "extra": 1.0, "body": 0.4}
MAX_DEFINITION_BYTES = 1024 * 1024


@dataclass
class KindIndex:
    """The definitions of one kind, with what queries look them up by."""

    items: list[Definition]
    text: TextIndex
    by_name: dict[str, list[int]]
    by_capability: dict[str, set[int]]
    name_terms: list[str]
    """Each name's stemmed words, space-separated with a space at each end (for whole-word lookups)."""

    @classmethod
    def build(cls, items: list[Definition]) -> KindIndex:
        by_name: dict[str, list[int]] = defaultdict(list)
        by_capability: dict[str, set[int]] = defaultdict(set)
        for i, item in enumerate(items):
            by_name[item.name.lower()].append(i)
            for capability in item.capabilities:
                by_capability[capability.lower()].add(i)
        documents = [
            {
                "name": item.name.replace("-", " ").replace("_", " "),
                "capabilities": " ".join(item.capabilities),
                "description": item.description,
                "extra": " ".join([item.category, *item.steps]),
                "body": item.body,
            }
            for item in items
        ]
        name_terms = [f" {' '.join(terms(item.name.replace('-', ' ').replace('_', ' ')))} " for item in items]
        return cls(items, TextIndex(documents, FIELD_WEIGHTS), dict(by_name), dict(by_capability), name_terms)


@dataclass
class CatalogIndex:
    """One immutable snapshot of everything indexed; a re-index builds a new one and swaps it in."""

    kinds: dict[Kind, KindIndex]
    roles: dict[str, Role]
    diagnostics: list[Diagnostic]
    duplicates: list[dict[str, Any]]
    built_at: float = field(default_factory=time.time)
    build_ms: float = 0.0
    files_read: int = 0

    def counts(self) -> dict[str, int]:
        return {f"{kind}s": len(index.items) for kind, index in self.kinds.items()}


@dataclass(frozen=True)
class _Seen:
    mtime_ns: int
    size: int
    definition: Definition


class Indexer:
    """Builds ``CatalogIndex`` snapshots from the configured globs, re-reading only files whose mtime or size moved."""

    def __init__(self, workspace: Path, settings: CatalogSettings) -> None:
        self.workspace = workspace
        self.settings = settings
        self._seen: dict[Path, _Seen] = {}
        # The search index of each kind, kept while that kind's definitions are the same objects in the same order:
        # a re-index that changed no file of a kind does not rebuild its index.
        self._built: dict[Kind, tuple[tuple[int, ...], KindIndex]] = {}

    def globs(self) -> dict[Kind, list[str]]:
        return {"agent": self.settings.agents, "skill": self.settings.skills, "workflow": self.settings.workflows}

    def watch_roots(self) -> list[Path]:
        """The existing directories the globs start from (for a file watcher)."""
        roots = {self._base(pattern)[0] for patterns in self.globs().values() for pattern in patterns}
        roots.add((self.workspace / self.settings.registry).parent)
        return sorted(r for r in roots if r.is_dir())

    def _base(self, pattern: str) -> tuple[Path, str]:
        if pattern.startswith("~/"):
            return Path.home(), pattern[2:]
        return self.workspace, pattern

    def _display(self, path: Path) -> str:
        for base, prefix in ((self.workspace, ""), (Path.home(), "~/")):
            try:
                return prefix + path.relative_to(base).as_posix()
            except ValueError:
                continue
        return path.as_posix()

    def build(self) -> CatalogIndex:
        started = time.perf_counter()
        found: dict[Kind, list[Definition]] = {kind: [] for kind in KINDS}
        diagnostics: list[Diagnostic] = []
        seen_now: dict[Path, _Seen] = {}
        read = 0
        for kind, patterns in self.globs().items():
            for path in self._files(patterns):
                if path in seen_now:
                    continue
                try:
                    stat = path.stat()
                except OSError:
                    continue
                if stat.st_size > MAX_DEFINITION_BYTES:
                    diagnostics.append(
                        Diagnostic(self._display(path), 0, "error", f"over {MAX_DEFINITION_BYTES} bytes; not indexed")
                    )
                    continue
                previous = self._seen.get(path)
                if previous is not None and (previous.mtime_ns, previous.size) == (stat.st_mtime_ns, stat.st_size):
                    entry = previous
                else:
                    try:
                        definition = read_definition(kind, path, self._display(path), self._plugin(path))
                    except OSError as exc:
                        diagnostics.append(Diagnostic(self._display(path), 0, "error", f"unreadable: {exc.strerror}"))
                        continue
                    entry = _Seen(stat.st_mtime_ns, stat.st_size, definition)
                    read += 1
                seen_now[path] = entry
                found[kind].append(entry.definition)
        self._seen = seen_now
        duplicates: list[dict[str, Any]] = []
        for kind in KINDS:
            found[kind], dupes = _without_copies(found[kind], diagnostics)
            duplicates.extend(dupes)
        agent_names = {d.name.lower() for d in found["agent"]}
        for workflow in found["workflow"]:
            link_workflow_agents(workflow, agent_names)
        for items in found.values():
            for definition in items:
                diagnostics.extend(definition.diagnostics)
        roles, registry_diagnostics = self._registry()
        diagnostics.extend(registry_diagnostics)
        for role in roles.values():
            for agent in [role.primary, *role.fallbacks]:
                if agent.lower() not in agent_names:
                    reason = f"role {role.name!r} names unknown agent {agent!r}"
                    diagnostics.append(Diagnostic(self.settings.registry, 0, "error", reason))
        index = CatalogIndex(
            kinds={kind: self._kind_index(kind, items) for kind, items in found.items()},
            roles=roles,
            diagnostics=diagnostics,
            duplicates=duplicates,
            files_read=read,
        )
        index.build_ms = round((time.perf_counter() - started) * 1000, 3)
        logger.info("catalog indexed %s in %.1f ms (%d files read)", index.counts(), index.build_ms, read)
        return index

    def _kind_index(self, kind: Kind, items: list[Definition]) -> KindIndex:
        key = tuple(id(item) for item in items)
        built = self._built.get(kind)
        if built is not None and built[0] == key:
            return built[1]
        index = KindIndex.build(items)
        self._built[kind] = (key, index)
        return index

    def _files(self, patterns: list[str]) -> list[Path]:
        out: list[Path] = []
        for pattern in patterns:
            base, relative = self._base(pattern)
            # glob.glob with root_dir keeps hidden directories (.claude) reachable and never follows '..' out of it.
            if ".." in Path(relative).parts:
                continue
            out.extend(base / match for match in sorted(glob.glob(relative, root_dir=base)))
        return [p for p in out if p.is_file()]

    def _plugin(self, path: Path) -> str:
        parts = self._display(path).split("/")
        if "plugins" in parts[:-1]:
            at = parts.index("plugins")
            if at + 1 < len(parts) - 1:
                return parts[at + 1]
        return "user" if parts[0] == "~" else "project"

    def _registry(self) -> tuple[dict[str, Role], list[Diagnostic]]:
        path = self.workspace / self.settings.registry
        if not path.is_file():
            return {}, []
        return read_registry(path, self.settings.registry)


def _without_copies(
    items: list[Definition], diagnostics: list[Diagnostic]
) -> tuple[list[Definition], list[dict[str, Any]]]:
    """Drop byte-identical copies of a definition (kept once); report copies and same-named different files."""
    groups: dict[str, list[Definition]] = defaultdict(list)
    for item in items:
        groups[item.name.lower()].append(item)
    kept: list[Definition] = []
    duplicates: list[dict[str, Any]] = []
    for group in groups.values():
        by_digest: dict[str, Definition] = {}
        for item in group:
            first = by_digest.get(item.digest)
            if first is None:
                by_digest[item.digest] = item
                kept.append(item)
            else:
                diagnostics.append(
                    Diagnostic(item.path, 0, "duplicate", f"identical copy of {first.path}; indexed once")
                )
        if len(group) > 1:
            duplicates.append(
                {
                    "kind": group[0].kind,
                    "name": group[0].name,
                    "paths": [item.path for item in group],
                    "identical": len(by_digest) == 1,
                }
            )
    return kept, duplicates
