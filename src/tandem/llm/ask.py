"""One question to whichever model can answer it: the client's own through MCP sampling, else the configured
OpenAI-compatible endpoint. What did not answer, and why, comes back with the reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import anyio

from tandem.core.context import CallContext
from tandem.llm.openai_compatible import ChatClient, ChatMessage, LlmError

Via = Literal["sampling", "llm"]


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer and who gave it; ``via`` is ``None`` when no model answered (``notes`` say why)."""

    via: Via | None = None
    text: str | None = None
    model: str | None = None
    notes: list[str] = field(default_factory=list)


async def ask(ctx: CallContext, *, system: str, prompt: str, max_tokens: int | None = None) -> Reply:
    """Ask the client's model (when it declared ``sampling``), then the ``[llm]`` endpoint (when configured). The
    whole ``[llm]`` answer is bounded by ``llm.timeout``; ``notes`` name the host an API key was sent to when that
    host is not this machine."""
    settings = ctx.settings.llm
    tokens = max_tokens or settings.max_tokens
    notes: list[str] = []
    if not settings.sampling:
        notes.append("sampling: turned off (llm.sampling = false)")
    elif "sampling" not in ctx.client_capabilities:
        notes.append("sampling: the client did not declare the sampling capability")
    else:
        try:
            with anyio.fail_after(settings.sampling_timeout):
                text = await ctx.sample(prompt, system=system, max_tokens=tokens)
        except TimeoutError:
            notes.append(f"sampling: the client did not answer within {settings.sampling_timeout:g}s")
        # The client may refuse (its user declined, its model failed) in any way it likes; the next path answers.
        except Exception as exc:
            notes.append(f"sampling: the client refused: {exc or type(exc).__name__}")
        else:
            if text.strip():
                return Reply("sampling", text.strip(), None, notes)
            notes.append("sampling: the client answered with empty text")
    if settings.base_url is None:
        notes.append("llm: no endpoint configured (llm.base_url)")
        return Reply(notes=notes)
    try:
        client = ChatClient(settings)
    except LlmError as exc:
        notes.append(f"llm: {exc}")
        return Reply(notes=notes)
    try:
        completion = await client.complete(
            [ChatMessage("system", system), ChatMessage("user", prompt)], max_tokens=tokens
        )
    except LlmError as exc:
        notes.append(f"llm: {exc}")
        return Reply(notes=_with_key_host(notes, client))
    return Reply("llm", completion.text, completion.model, _with_key_host(notes, client))


def _with_key_host(notes: list[str], client: ChatClient) -> list[str]:
    """``notes`` and, when the API key leaves this machine, which host it goes to: ``base_url`` may come from a
    cloned repository's tandem.toml, so the user is told where their key is sent."""
    if client.key_sent_to is None:
        return notes
    where = f"{client.key_sent_to}, not this machine (llm.base_url)"
    return [*notes, f"llm: the API key in {client.settings.api_key_env} goes to {where}"]
