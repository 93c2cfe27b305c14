"""Multi-round-trip fixtures (protocol 2026-07-28): tools and a prompt that ask the client for input first."""

from __future__ import annotations

from typing import Any

from tandem.core import CallContext, InputRequired, MissingCapability, PromptMessage, Text
from tandem.toolsets.conformance.toolset import accepted, toolset

NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
OK_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
COLOR_SCHEMA = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
CONTEXT_SCHEMA = {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}


def _response(ctx: CallContext, key: str) -> dict[str, Any] | None:
    answer = (ctx.input_responses or {}).get(key)
    return answer if isinstance(answer, dict) else None


def _accepted(ctx: CallContext, key: str, field: str) -> Any:
    """One field of an accepted elicitation answer, or ``None``."""
    return (accepted(ctx, key) or {}).get(field)


def _sampled_text(ctx: CallContext, key: str) -> str | None:
    content = (_response(ctx, key) or {}).get("content")
    return content.get("text") if isinstance(content, dict) and content.get("type") == "text" else None


def _roots(ctx: CallContext, key: str) -> list[Any] | None:
    roots = (_response(ctx, key) or {}).get("roots")
    return roots if isinstance(roots, list) else None


@toolset.tool(read_only=True)
def test_input_required_result_elicitation(ctx: CallContext) -> str | InputRequired:
    """Ask the user's name through an input request, then greet them."""
    name = _accepted(ctx, "user_name", "name")
    if isinstance(name, str):
        return f"Hello, {name}!"
    return InputRequired({"user_name": InputRequired.elicitation("What is your name?", NAME_SCHEMA)})


@toolset.tool(read_only=True)
def test_input_required_result_sampling(ctx: CallContext) -> str | InputRequired:
    """Ask the client's model a question through an input request, then report its answer."""
    text = _sampled_text(ctx, "capital_question")
    if text is not None:
        return f"The model answered: {text}"
    return InputRequired({"capital_question": InputRequired.sampling("What is the capital of France?", 100)})


@toolset.tool(read_only=True)
def test_input_required_result_list_roots(ctx: CallContext) -> str | InputRequired:
    """Ask the client for its roots through an input request, then list them."""
    roots = _roots(ctx, "client_roots")
    if roots is not None:
        return "Client roots: " + ", ".join(str(r.get("uri")) for r in roots if isinstance(r, dict))
    return InputRequired({"client_roots": InputRequired.roots()})


@toolset.tool(read_only=True)
def test_input_required_result_request_state(ctx: CallContext) -> str | InputRequired:
    """Ask for a confirmation, carrying state across the round trip."""
    if ctx.request_state == "awaiting-confirmation" and _accepted(ctx, "confirm", "ok") is not None:
        return "state-ok: the confirmation arrived with the state it was asked under"
    return InputRequired({"confirm": InputRequired.elicitation("Please confirm", OK_SCHEMA)}, "awaiting-confirmation")


@toolset.tool(read_only=True)
def test_input_required_result_multiple_inputs(ctx: CallContext) -> str | InputRequired:
    """Ask for an elicitation, a sampling and the roots in one round."""
    name = _accepted(ctx, "user_name", "name")
    greeting = _sampled_text(ctx, "greeting")
    roots = _roots(ctx, "client_roots")
    if ctx.request_state == "multiple" and name is not None and greeting is not None and roots is not None:
        return f"{greeting} {name}; {len(roots)} root(s)"
    return InputRequired(
        {
            "user_name": InputRequired.elicitation("What is your name?", NAME_SCHEMA),
            "greeting": InputRequired.sampling("Generate a greeting", 50),
            "client_roots": InputRequired.roots(),
        },
        "multiple",
    )


@toolset.tool(read_only=True)
def test_input_required_result_multi_round(ctx: CallContext) -> str | InputRequired:
    """Ask two questions in two rounds, the second depending on the first."""
    state = ctx.request_state or ""
    if state.startswith("step2:"):
        color = _accepted(ctx, "step2", "color")
        if isinstance(color, str):
            return f"{state.removeprefix('step2:')} likes {color}"
    if state == "step1":
        name = _accepted(ctx, "step1", "name")
        if isinstance(name, str):
            ask = InputRequired.elicitation("Step 2: What is your favorite color?", COLOR_SCHEMA)
            return InputRequired({"step2": ask}, f"step2:{name}")
    return InputRequired({"step1": InputRequired.elicitation("Step 1: What is your name?", NAME_SCHEMA)}, "step1")


@toolset.tool(read_only=True)
def test_input_required_result_tampered_state(ctx: CallContext) -> str | InputRequired:
    """Carry state across a round trip; a client that alters it gets an error from the server, not this tool."""
    if ctx.request_state == "untampered" and _accepted(ctx, "confirm", "ok") is not None:
        return "The state came back as it was sent"
    return InputRequired({"confirm": InputRequired.elicitation("Please confirm", OK_SCHEMA)}, "untampered")


@toolset.tool(read_only=True)
def test_input_required_result_capabilities(ctx: CallContext) -> str | InputRequired:
    """Ask only through the input kinds the client declared it can answer."""
    if ctx.input_responses:
        return f"Answered: {', '.join(sorted(ctx.input_responses))}"
    requests = {}
    if "elicitation" in ctx.client_capabilities:
        requests["user_name"] = InputRequired.elicitation("What is your name?", NAME_SCHEMA)
    if "sampling" in ctx.client_capabilities:
        requests["greeting"] = InputRequired.sampling("Generate a greeting", 50)
    if "roots" in ctx.client_capabilities:
        requests["client_roots"] = InputRequired.roots()
    if not requests:
        raise MissingCapability("this tool needs elicitation, sampling or roots", {"elicitation": {}})
    return InputRequired(requests)


@toolset.prompt(description="A prompt that asks the user for context before it is rendered.")
def test_input_required_result_prompt(ctx: CallContext) -> list[PromptMessage] | InputRequired:
    context = _accepted(ctx, "user_context", "context")
    if isinstance(context, str):
        return [PromptMessage("user", Text(f"Use this context: {context}"))]
    ask = InputRequired.elicitation("What context should the prompt use?", CONTEXT_SCHEMA)
    return InputRequired({"user_context": ask})
