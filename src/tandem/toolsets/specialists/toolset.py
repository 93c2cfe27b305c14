"""The ``specialists`` toolset: personas (architect, SRE, security, QA, ...) served as MCP prompts, and
``consult_specialist``, answered by the client's model, a configured endpoint, or the caller itself."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field

from tandem.core import CallContext, PromptMessage, Text, ToolError, ToolResult, Toolset
from tandem.core.registry import Prompt
from tandem.core.schema import signature_of
from tandem.llm import ask
from tandem.toolsets.specialists import personas as persona_files
from tandem.toolsets.specialists.briefing import Brief, ContextFile, LeftOut, Redaction, brief, redact
from tandem.toolsets.specialists.personas import Persona, Personas
from tandem.toolsets.specialists.relevance import rank

if TYPE_CHECKING:
    from tandem.config import Settings

toolset = Toolset("specialists", description="Specialist personas (architect, SRE, security, QA, ...) to consult.")

PROMPT_PREFIX = "specialist_"
DEFAULT_PERSONA = "architect"
"""Who answers a question that shares no word with any persona: the generalist."""
SHOWN_CANDIDATES = 3

Question = Annotated[str, Field(min_length=1, max_length=20_000, description="What to ask the specialist.")]
PersonaName = Annotated[
    str | None,
    Field(max_length=40, description="The specialist's name (see list_specialists); omitted: the most relevant."),
]
ContextPaths = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=1000)]] | None,
    Field(max_length=20, description="Workspace files to include as context (each capped in size)."),
]
ContextText = Annotated[
    str | None, Field(max_length=100_000, description="Extra context as text: a diff, an error, a design note.")
]


def _load(settings: Settings) -> Personas:
    shown = settings.data_dir.as_posix() if not settings.data_dir.is_absolute() else "<data_dir>"
    return persona_files.load(settings.workspace, settings.data_path, shown)


async def _personas(ctx: CallContext) -> Personas:
    return await ctx.run_sync(functools.partial(_load, ctx.settings))


def _split_paths(paths: str) -> list[str]:
    return [p for p in paths.replace(",", " ").split() if p]


def _left_out_text(left_out: list[LeftOut]) -> str:
    return "".join(f"\n\n(Left out of the context: {item.path}: {item.reason}.)" for item in left_out)


async def _render(
    persona: Persona,
    ctx: CallContext,
    question: Annotated[str, Field(description="What to ask the specialist.")],
    context: Annotated[str, Field(description="Extra context as text (a diff, an error, notes).")] = "",
    paths: Annotated[str, Field(description="Workspace files to include, separated by commas or spaces.")] = "",
) -> list[PromptMessage]:
    made = await brief(ctx, question, context, _split_paths(paths))
    text = f"{persona.instructions}\n\n---\n\n{made.text}{_left_out_text(made.left_out)}"
    return [PromptMessage("user", Text(text))]


def _prompt_template(
    ctx: CallContext,
    question: Annotated[str, Field(description="What to ask the specialist.")],
    context: Annotated[str, Field(description="Extra context as text (a diff, an error, notes).")] = "",
    paths: Annotated[str, Field(description="Workspace files to include, separated by commas or spaces.")] = "",
) -> None:
    """The arguments every persona prompt takes (``_render`` less the persona it is bound to)."""


_PROMPT_SIGNATURE = signature_of(_prompt_template, context_type=CallContext)


def _as_prompt(persona: Persona) -> Prompt:
    description = persona.description + (f" When to use: {persona.when_to_use}" if persona.when_to_use else "")
    return Prompt(
        name=PROMPT_PREFIX + persona.name,
        title=persona.title,
        description=description,
        fn=functools.partial(_render, persona),
        signature=_PROMPT_SIGNATURE,
        toolset=toolset.name,
    )


@toolset.prompt_source
async def _persona_prompts(ctx: CallContext) -> list[Prompt]:
    """One prompt per persona, the project's included: they can change while the server runs."""
    return [_as_prompt(p) for p in (await _personas(ctx)).by_name.values()]


class Specialist(BaseModel):
    name: str
    title: str
    description: str
    keywords: list[str]
    when_to_use: str | None
    source: Literal["shipped", "project"]
    file: str
    overrides: bool
    prompt: str
    """The MCP prompt that serves this persona."""


class Problem(BaseModel):
    file: str
    problem: str


class SpecialistList(BaseModel):
    specialists: list[Specialist]
    problems: list[Problem]
    """Persona files that could not be read, and why; the others are served."""

    def summary(self) -> str:
        lines = [f"{s.name} ({s.title}, {s.source}): {s.description}" for s in self.specialists]
        lines += [f"PROBLEM {p.file}: {p.problem}" for p in self.problems]
        return "\n".join(lines)


@toolset.tool(read_only=True, title="List specialists")
async def list_specialists(ctx: CallContext) -> SpecialistList:
    """List the specialist personas you can consult (consult_specialist) or load as prompts (specialist_<name>):
    each with its title, what it covers and where it comes from (shipped with Tandem, or the project's
    .tandem/specialists/*.md, which override shipped ones of the same name). Persona files that could not be read
    are listed with the problem."""
    found = await _personas(ctx)
    return SpecialistList(
        specialists=[
            Specialist(
                name=p.name,
                title=p.title,
                description=p.description,
                keywords=list(p.keywords),
                when_to_use=p.when_to_use,
                source=p.source,
                file=p.file,
                overrides=p.overrides,
                prompt=PROMPT_PREFIX + p.name,
            )
            for p in sorted(found.by_name.values(), key=lambda p: p.name)
        ],
        problems=[Problem(file=p.file, problem=p.problem) for p in found.problems],
    )


class Candidate(BaseModel):
    name: str
    score: float
    matched: list[str]
    """The question's words that matched the persona, strongest first."""


class Consultation(BaseModel):
    path: Literal["sampling", "llm", "prompt"]
    """Who answered: the client's model (sampling), the [llm] endpoint (llm), or nobody yet (prompt: the caller
    answers ``prompt`` under ``system_prompt`` itself)."""
    persona: str
    title: str
    chosen_by: Literal["argument", "relevance", "default"]
    why: str
    candidates: list[Candidate]
    answer: str | None
    model: str | None
    system_prompt: str | None
    prompt: str | None
    context_files: list[ContextFile]
    left_out: list[LeftOut]
    redacted: list[Redaction]
    """Lines of the question, the context or a project persona replaced because they held a secret."""
    notes: list[str]
    """Why the paths before the one that answered did not."""


def _choose(question: str, found: Personas, wanted: str | None) -> tuple[Persona, str, str, list[Candidate]]:
    if wanted is not None:
        name = wanted.strip().lower().removeprefix(PROMPT_PREFIX)
        persona = found.by_name.get(name)
        if persona is None:
            broken = [str(p) for p in found.problems if p.file.rsplit("/", 1)[-1].removesuffix(".md") == name]
            hint = f" Its file could not be read: {broken[0]}." if broken else ""
            raise ToolError(
                f"no specialist named {wanted!r}.{hint} Available: {', '.join(sorted(found.by_name))}; or omit "
                "persona to have the most relevant one chosen"
            )
        return persona, "argument", f"asked for {persona.name}", []
    ranked = rank(question, found.by_name.values())
    candidates = [Candidate(name=m.persona.name, score=m.score, matched=list(m.matched)) for m in ranked]
    shown = [c for c in candidates if c.score > 0][:SHOWN_CANDIDATES]
    if ranked and ranked[0].score > 0:
        best = ranked[0]
        return best.persona, "relevance", f"best match (score {best.score}) on: {', '.join(best.matched)}", shown
    fallback = found.by_name.get(DEFAULT_PERSONA) or (ranked[0].persona if ranked else None)
    if fallback is None:
        raise ToolError("no specialist personas are available; list_specialists shows the files' problems")
    return fallback, "default", f"no persona shares a word with the question; {fallback.name} is the default", shown


def _prompt_path_text(result: Consultation) -> str:
    reasons = "; ".join(result.notes) or "no model is configured"
    return (
        f"No model answered for the {result.title} ({reasons}). Answer the question yourself as this specialist: "
        f"follow the instructions under SYSTEM, then answer the message under USER.\n\n"
        f"=== SYSTEM ===\n{result.system_prompt}\n\n=== USER ===\n{result.prompt}"
    )


@toolset.tool(read_only=True, open_world=True, title="Consult a specialist")
async def consult_specialist(
    ctx: CallContext,
    question: Question,
    persona: PersonaName = None,
    context_paths: ContextPaths = None,
    context: ContextText = None,
) -> ToolResult:
    """Ask a specialist (architect, platform expert, devops, SRE, security, QA, or the project's own) a question,
    with workspace files as context. Without ``persona`` the specialist most relevant to the question is chosen,
    and the result says which and why. The answer comes from your client's model through MCP sampling when the
    client supports it, otherwise from the OpenAI-compatible endpoint configured in [llm]; when neither can answer,
    the result holds the specialist's system prompt and the assembled question (path 'prompt') for you to answer
    yourself. ``path`` says which one answered and ``notes`` why the others did not. Files that hold secrets are
    left out of the context, and lines of ``question``, ``context`` or a project persona that hold one are replaced
    by a notice (``redacted``) before anything is sent to any model."""
    found = await _personas(ctx)
    chosen, chosen_by, why, candidates = _choose(question, found, persona)
    made: Brief = await brief(ctx, question, context or "", context_paths)
    user = made.text + _left_out_text(made.left_out)
    system, in_persona = chosen.instructions, list[Redaction]()
    if chosen.source == "project":  # a file of the repository; shipped personas are Tandem's own text
        system, in_persona = await redact(ctx, "persona", system)
    reply = await ask(ctx, system=system, prompt=user)
    result = Consultation(
        path=reply.via or "prompt",
        persona=chosen.name,
        title=chosen.title,
        chosen_by=chosen_by,
        why=why,
        candidates=candidates,
        answer=reply.text,
        model=reply.model,
        system_prompt=None if reply.via else system,
        prompt=None if reply.via else user,
        context_files=made.files,
        left_out=made.left_out,
        redacted=made.redacted + in_persona,
        notes=reply.notes,
    )
    head = f"{chosen.title} ({chosen.name}; {why})"
    if reply.via is None:
        text = f"{head}\n\n{_prompt_path_text(result)}"
    else:
        by = f" ({reply.model})" if reply.model else ""
        text = f"{head}, answered through {reply.via}{by}:\n\n{reply.text}"
    return ToolResult(content=[Text(text)], structured=result.model_dump(mode="json"))
