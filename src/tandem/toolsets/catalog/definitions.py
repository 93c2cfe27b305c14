"""What the catalog knows of one agent, skill or workflow file, and of the role registry."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tandem.toolsets.catalog import frontmatter
from tandem.toolsets.catalog.frontmatter import Diagnostic
from tandem.toolsets.catalog.text_index import stem, words

Kind = Literal["agent", "skill", "workflow"]
MODELS = ("haiku", "sonnet", "opus")

_NAME = re.compile(r"^[A-Za-z0-9][\w.:-]{0,99}$")
_STEP = re.compile(r"^\s*(?:\d+[.)]|[-*])\s+(?P<step>\S.*)$")
_MAX_EXTRACTED = 8
GENERIC_WORDS = frozenset(
    """expert specialist developer engineer agent skill workflow command senior master professional specialized
    specializing focused focus task tasks work working handle handles handling write writes writing build builds
    building design designs designing create creates creating implement implements implementing manage manages
    managing ensure ensures best practice practices code coding modern deep strong proficient knowledge experience
    experienced comprehensive production ready quality high level support supports advanced including include
    includes across end full world like things stuff anything everything general generalist""".split()
)
"""Words too common in descriptions to be a capability."""


@dataclass
class Definition:
    """One indexed file. ``key`` (``kind:plugin/name``) is unique; ``name`` may repeat across plugins."""

    kind: Kind
    name: str
    description: str
    plugin: str
    path: str
    body: str
    digest: str
    model: str | None = None
    capabilities: list[str] = field(default_factory=list)
    capabilities_explicit: bool = False
    tools: list[str] = field(default_factory=list)
    category: str = ""
    keywords: list[str] = field(default_factory=list)
    arguments: str = ""
    steps: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    role: str | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.plugin}/{self.name}"

    def summary(self) -> dict[str, Any]:
        """The seed's index shape for this kind: what a query answer carries (no body)."""
        if self.kind == "agent":
            shape: dict[str, Any] = {
                "name": self.name,
                "description": self.description,
                "model": self.model,
                "capabilities": self.capabilities,
                "plugin": self.plugin,
            }
        elif self.kind == "skill":
            shape = {
                "name": self.name,
                "category": self.category,
                "keywords": self.keywords,
                "description": self.description,
                "plugin": self.plugin,
            }
        else:
            shape = {
                "name": self.name,
                "description": self.description,
                "arguments": self.arguments,
                "steps": self.steps,
                "agents": self.agents,
                "plugin": self.plugin,
            }
        return shape

    def full(self) -> dict[str, Any]:
        """Everything, body included: what a client loads once it has picked this definition."""
        return {
            **self.summary(),
            "kind": self.kind,
            "path": self.path,
            "tools": self.tools,
            "body": self.body,
            "diagnostics": [d.as_dict() for d in self.diagnostics],
        }


@dataclass(frozen=True)
class Role:
    name: str
    primary: str
    fallbacks: list[str]
    capabilities: list[str]
    model: str | None
    use_when: str


def read_definition(kind: Kind, path: Path, shown: str, plugin: str) -> Definition:
    """Read one definition file; problems become diagnostics on it, never an exception."""
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    parsed = frontmatter.parse(text, shown)
    fields = parsed.fields
    diagnostics = list(parsed.diagnostics)
    fallback_name = path.parent.name if path.name == "SKILL.md" else path.stem
    name = _text(fields.get("name"))
    if not name or not _NAME.match(name):
        if name:
            reason = f"name {name[:40]!r} is not a plain name; used the file's"
            diagnostics.append(Diagnostic(shown, 2, "error", reason))
        name = fallback_name
    description = _text(fields.get("description")) or _first_paragraph(parsed.body)
    definition = Definition(
        kind=kind,
        name=name,
        description=description,
        plugin=plugin,
        path=shown,
        body=parsed.body,
        digest=hashlib.sha256(raw).hexdigest(),
        diagnostics=diagnostics,
    )
    model = _text(fields.get("model")).lower()
    definition.model = next((m for m in MODELS if m in model), model or None)
    definition.tools = _names(fields.get("tools"))
    explicit = [*_names(fields.get("capabilities")), *_names(fields.get("tags"))]
    definition.keywords = _names(fields.get("keywords"))
    definition.category = _text(fields.get("category"))
    definition.role = _text(fields.get("role")) or None
    if kind == "workflow":
        definition.arguments = _text(fields.get("argument-hint") or fields.get("arguments"))
        definition.steps = _steps(parsed.body)
        definition.agents = _names(fields.get("agents"))
    if kind == "skill" and definition.keywords:
        explicit.extend(definition.keywords)
    definition.capabilities_explicit = bool(explicit)
    definition.capabilities = _dedupe(c.lower() for c in explicit) or extract_capabilities(name, description)
    if kind == "skill" and not definition.keywords:
        definition.keywords = definition.capabilities
    return definition


def link_workflow_agents(workflow: Definition, agent_names: set[str]) -> None:
    """Name the agents a workflow's steps mention, when its frontmatter does not list them."""
    if workflow.agents:
        return
    text = "\n".join(workflow.steps) or workflow.body
    found = {m for m in re.findall(r"[a-z0-9][a-z0-9-]*[a-z0-9]", text.lower()) if m in agent_names}
    workflow.agents = sorted(found, key=text.lower().find)


def extract_capabilities(name: str, description: str) -> list[str]:
    """Capabilities for a definition that declares none: the telling words of its name, then its description."""
    found: list[str] = []
    seen: set[str] = set()
    for word in [*words(name.replace("-", " ").replace("_", " ")), *words(description)]:
        if word in GENERIC_WORDS or len(word) < 2 or word.isdigit():
            continue
        key = stem(word)
        if key not in seen:
            seen.add(key)
            found.append(word)
        if len(found) == _MAX_EXTRACTED:
            break
    return found


def read_registry(path: Path, shown: str) -> tuple[dict[str, Role], list[Diagnostic]]:
    """The role registry (``roles.<role>: {primary, fallbacks, capabilities, model, use_when}``)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        return {}, [Diagnostic(shown, line, "error", f"invalid YAML: {getattr(exc, 'problem', None) or exc}")]
    roles_data = data.get("roles") if isinstance(data, dict) else None
    if not isinstance(roles_data, dict):
        return {}, [Diagnostic(shown, 1, "error", "no 'roles:' mapping; expected roles.<role>: {primary, fallbacks}")]
    roles: dict[str, Role] = {}
    diagnostics: list[Diagnostic] = []
    for role_name, entry in roles_data.items():
        if not isinstance(entry, dict) or not _text(entry.get("primary")):
            diagnostics.append(Diagnostic(shown, 1, "error", f"role {role_name!r} has no 'primary' agent; skipped"))
            continue
        roles[str(role_name)] = Role(
            name=str(role_name),
            primary=_text(entry["primary"]),
            fallbacks=_names(entry.get("fallbacks")),
            capabilities=[c.lower() for c in _names(entry.get("capabilities"))],
            model=_text(entry.get("model")) or None,
            use_when=_text(entry.get("use_when")),
        )
    return roles, diagnostics


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return " ".join(str(value).split())


def _names(value: Any) -> list[str]:
    """A list field written as a YAML list or as a comma-separated string."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return _dedupe(" ".join(str(item).split()) for item in items if not isinstance(item, dict | list))


def _dedupe(items: Any) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


def _first_paragraph(body: str) -> str:
    for block in body.split("\n\n"):
        text = " ".join(line.strip().lstrip("#").strip() for line in block.splitlines()).strip()
        if text:
            return text[:300]
    return ""


def _steps(body: str) -> list[str]:
    return [m.group("step").strip() for line in body.splitlines() if (m := _STEP.match(line))]
