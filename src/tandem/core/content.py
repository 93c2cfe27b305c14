"""What a tool or prompt may return besides plain text and pydantic models; the server maps these to MCP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


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
