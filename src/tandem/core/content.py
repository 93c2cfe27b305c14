"""What a tool or prompt may return besides plain text and pydantic models; the server maps these to MCP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Image:
    data: bytes
    mime_type: str = "image/png"


@dataclass(frozen=True, slots=True)
class Audio:
    data: bytes
    mime_type: str = "audio/wav"


@dataclass(frozen=True, slots=True)
class EmbeddedResource:
    """A resource's contents carried inline: ``text`` or ``blob``, exactly one."""

    uri: str
    mime_type: str = "text/plain"
    text: str | None = None
    blob: bytes | None = None


@dataclass(frozen=True, slots=True)
class ResourceLink:
    uri: str
    name: str
    description: str | None = None
    mime_type: str | None = None


Content = Text | Image | Audio | EmbeddedResource | ResourceLink


@runtime_checkable
class Summarized(Protocol):
    """A returned model with a ``summary()`` is answered with that short text first, then the model as JSON (the
    JSON is also the call's ``structuredContent``)."""

    def summary(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool result spelled out: content blocks, optional structured content, and the error flag."""

    content: list[Content] = field(default_factory=list)
    structured: dict[str, Any] | None = None
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class PromptMessage:
    role: Literal["user", "assistant"]
    content: Content


@dataclass(frozen=True, slots=True)
class InputRequired:
    """Ask the client for input before the call can finish (the 2026-07-28 multi-round-trip result).

    ``requests`` maps a key of the tool's choosing to an MCP input request (``{"method": "elicitation/create" |
    "sampling/createMessage" | "roots/list", "params": {...}}``). The client answers by calling again with
    ``input_responses`` under the same keys, and ``state`` echoed back as ``CallContext.request_state``; the server
    seals ``state`` so the client cannot forge it.
    """

    requests: dict[str, dict[str, Any]]
    state: str | None = None

    @staticmethod
    def elicitation(message: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"method": "elicitation/create", "params": {"message": message, "requestedSchema": schema}}

    @staticmethod
    def sampling(prompt: str, max_tokens: int = 1024) -> dict[str, Any]:
        message = {"role": "user", "content": {"type": "text", "text": prompt}}
        return {"method": "sampling/createMessage", "params": {"messages": [message], "maxTokens": max_tokens}}

    @staticmethod
    def roots() -> dict[str, Any]:
        return {"method": "roots/list", "params": {}}
