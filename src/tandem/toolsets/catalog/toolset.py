"""The ``catalog`` toolset: just-in-time discovery of agents, skills and workflows, and orchestration patterns that
learn from outcomes. Each tool is also a method of the plain JSON-RPC API (``POST /``) under the seed's name."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from tandem.core import CallContext, Toolset
from tandem.core.content import Text, ToolResult
from tandem.toolsets.catalog.service import Catalog, answer_text

if TYPE_CHECKING:
    from tandem.config import Settings

toolset = Toolset(
    "catalog",
    description="Which agent, skill or workflow fits a task, answered on demand instead of listed in every prompt.",
)

Capability = Annotated[str | None, Field(max_length=100, description="A capability tag, e.g. 'react' (fuzzy).")]
Role = Annotated[str | None, Field(max_length=50, description="An agent registry role, e.g. 'frontend_developer'.")]
Context = Annotated[str | None, Field(max_length=500, description="What the task is about, in words.")]
Goal = Annotated[str, Field(min_length=1, max_length=500, description="The goal, in words.")]
Limit = Annotated[int, Field(ge=1, le=20, description="Most answers returned.")]
Name = Annotated[str, Field(min_length=1, max_length=200, description="The name, or plugin/name when it repeats.")]
Detail = Annotated[Literal["summary", "full"], Field(description="'full' adds the body (the system prompt).")]
AgentList = Annotated[list[Annotated[str, Field(max_length=100)]], Field(min_length=1, max_length=50)]


@toolset.service
@contextlib.contextmanager
def _catalog_service(settings: Settings) -> Iterator[Catalog]:
    catalog = Catalog(settings.workspace, settings.data_path, settings.catalog).start()
    try:
        yield catalog
    finally:
        catalog.close()


def _catalog(ctx: CallContext) -> Catalog:
    return ctx.service("catalog")


def _answer(data: dict[str, Any]) -> ToolResult:
    """Compact JSON text (it is what a model reads, and tokens count) plus the same as structured content."""
    return ToolResult(content=[Text(answer_text(data))], structured=data)


@toolset.tool(read_only=True, title="Find agents", rpc="queryAgents")
def query_agents(
    ctx: CallContext, capability: Capability = None, role: Role = None, context: Context = None, limit: Limit = 5
) -> ToolResult:
    """Find the agents for a task: by role (the agent registry's primary and fallbacks), by capability (exact,
    then fuzzy spelling) and by context (relevance to a description of the work). Give at least one of them.
    Answers carry each agent's name, description, model, capabilities and plugin; load one's full prompt with
    get_agent once you pick it."""
    return _answer(_catalog(ctx).query_agents(capability, role, context, limit))


@toolset.tool(read_only=True, title="Find skills", rpc="querySkills")
def query_skills(
    ctx: CallContext,
    context: Context = None,
    category: Annotated[str | None, Field(max_length=100, description="Only this category, if given.")] = None,
    limit: Limit = 5,
) -> ToolResult:
    """Find the skills relevant to a task described in ``context`` (and/or in one ``category``)."""
    return _answer(_catalog(ctx).query_skills(context, category, limit))


@toolset.tool(read_only=True, title="Find workflows", rpc="queryWorkflows")
def query_workflows(ctx: CallContext, goal: Goal, limit: Limit = 5) -> ToolResult:
    """Find the workflows (slash commands) whose purpose matches ``goal``, with their steps and agents."""
    return _answer(_catalog(ctx).query_workflows(goal, limit))


@toolset.tool(read_only=True, title="Get an agent", rpc="getAgent")
def get_agent(ctx: CallContext, name: Name, detail: Detail = "summary") -> ToolResult:
    """One agent by name: its summary, or with ``detail='full'`` its whole definition (the system prompt)."""
    return _answer(_catalog(ctx).get_definition("agent", name, detail))


@toolset.tool(read_only=True, title="Get a skill", rpc="getSkill")
def get_skill(ctx: CallContext, name: Name, detail: Detail = "summary") -> ToolResult:
    """One skill by name: its summary, or with ``detail='full'`` its instructions."""
    return _answer(_catalog(ctx).get_definition("skill", name, detail))


@toolset.tool(read_only=True, title="Get a workflow", rpc="getWorkflow")
def get_workflow(ctx: CallContext, name: Name, detail: Detail = "summary") -> ToolResult:
    """One workflow by name: its summary, or with ``detail='full'`` its whole text."""
    return _answer(_catalog(ctx).get_definition("workflow", name, detail))


@toolset.tool(read_only=True, title="Orchestration pattern for a goal", rpc="getOrchestrationPattern")
def get_orchestration_pattern(ctx: CallContext, goal: Goal) -> ToolResult:
    """The recommended agent sequence for ``goal``: the stored pattern most similar to it (weighted by how often it
    succeeded), or, when none is similar enough, one proposed from the best workflow or agents (``source`` says
    which)."""
    return _answer(_catalog(ctx).get_orchestration_pattern(goal))


@toolset.tool(read_only=True, title="Similar patterns", rpc="queryPattern")
def query_pattern(
    ctx: CallContext,
    goal: Goal,
    min_similarity: Annotated[float | None, Field(ge=0, le=1, description="Least similarity (default 0.7).")] = None,
    limit: Limit = 5,
) -> ToolResult:
    """Stored orchestration patterns similar to ``goal``, ranked by similarity x success rate."""
    return _answer(_catalog(ctx).query_pattern(goal, min_similarity, limit))


@toolset.tool(title="Store a pattern", rpc="storePattern", destructive=False, idempotent=True)
async def store_pattern(
    ctx: CallContext,
    goal: Goal,
    agent_sequence: AgentList,
    dependencies: Annotated[
        dict[str, list[str]] | None, Field(description="For each agent, the agents it waits for.")
    ] = None,
    parallel_groups: Annotated[
        list[list[str]] | None, Field(description="Groups of agents that may run at the same time, in order.")
    ] = None,
) -> ToolResult:
    """Store an orchestration pattern (a goal and the agents that achieve it); on disk when this returns."""
    catalog = _catalog(ctx)
    return _answer(
        await ctx.run_sync(lambda: catalog.store_pattern(goal, agent_sequence, dependencies, parallel_groups))
    )


@toolset.tool(title="Record a decision", rpc="cacheDecision", destructive=False, idempotent=True)
async def cache_decision(
    ctx: CallContext,
    task_id: Annotated[str, Field(min_length=1, max_length=200, description="Your id for this task; unique.")],
    task_description: Annotated[str, Field(min_length=1, max_length=500)],
    agents_used: AgentList,
    result: Literal["success", "failure", "partial"],
    duration_ms: Annotated[int | None, Field(ge=0)] = None,
    tokens_saved: Annotated[int | None, Field(ge=0)] = None,
    pattern_id: Annotated[str | None, Field(max_length=100, description="The pattern followed, if one was.")] = None,
) -> ToolResult:
    """Record which agents a task used and how it went, so patterns learn: the outcome counts towards the pattern
    followed (or a similar stored one, or a new one). ``partial`` counts as a failure. Recording the same
    ``task_id`` again changes nothing. On disk when this returns."""
    catalog = _catalog(ctx)
    return _answer(
        await ctx.run_sync(
            lambda: catalog.cache_decision(
                task_id=task_id,
                task_description=task_description,
                agents_used=agents_used,
                result=result,
                duration_ms=duration_ms,
                tokens_saved=tokens_saved,
                pattern_id=pattern_id,
            )
        )
    )


@toolset.tool(read_only=True, title="Catalog health", rpc="getHealth")
def catalog_health(ctx: CallContext) -> ToolResult:
    """The catalog's health: uptime, memory, answer cache hit rate, database, and how much is indexed."""
    return _answer(_catalog(ctx).health())


@toolset.tool(read_only=True, title="Catalog metrics", rpc="getMetrics")
def catalog_metrics(ctx: CallContext) -> ToolResult:
    """Query counts by method, latency percentiles, cache figures and pattern success rates."""
    return _answer(_catalog(ctx).metrics())


@toolset.tool(title="Re-index the catalog", rpc="reindex", destructive=False, idempotent=True)
async def catalog_reindex(ctx: CallContext) -> ToolResult:
    """Re-read the definition files that changed and rebuild the index now (it also follows file changes)."""
    catalog = _catalog(ctx)
    return _answer(await ctx.run_sync(catalog.reindex))


@toolset.tool(read_only=True, title="Catalog problems", rpc="getDiagnostics")
def catalog_diagnostics(ctx: CallContext) -> ToolResult:
    """Definition files with problems (invalid frontmatter, repaired or not; unknown agents in the registry) and
    agents copied into several plugins."""
    return _answer(_catalog(ctx).diagnostics())


def _body(ctx: CallContext, kind: Literal["agent", "skill", "workflow"], name: str) -> str:
    definition = _catalog(ctx).definition(kind, name)
    return definition.body


@toolset.resource("catalog://agents/{name}", mime_type="text/markdown")
def agent_resource(ctx: CallContext, name: str) -> str:
    """An agent's definition body (its system prompt), loaded only when the agent is picked."""
    return _body(ctx, "agent", name)


@toolset.resource("catalog://skills/{name}", mime_type="text/markdown")
def skill_resource(ctx: CallContext, name: str) -> str:
    """A skill's instructions."""
    return _body(ctx, "skill", name)


@toolset.resource("catalog://workflows/{name}", mime_type="text/markdown")
def workflow_resource(ctx: CallContext, name: str) -> str:
    """A workflow's full text."""
    return _body(ctx, "workflow", name)
