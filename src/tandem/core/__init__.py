"""The core: registry, call context, errors, content types. It knows nothing of JSON-RPC or transports."""

from tandem.core.content import (
    Audio,
    EmbeddedResource,
    Image,
    InputRequired,
    PromptMessage,
    ResourceLink,
    Text,
    ToolResult,
)
from tandem.core.context import CallContext
from tandem.core.errors import ConfigError, InvalidArguments, MissingCapability, NotFound, TandemError, ToolError
from tandem.core.registry import Registry, ToolAnnotations, Toolset, discover_toolsets

__all__ = [
    "Audio",
    "CallContext",
    "ConfigError",
    "EmbeddedResource",
    "Image",
    "InputRequired",
    "InvalidArguments",
    "MissingCapability",
    "NotFound",
    "PromptMessage",
    "Registry",
    "ResourceLink",
    "TandemError",
    "Text",
    "ToolAnnotations",
    "ToolError",
    "ToolResult",
    "Toolset",
    "discover_toolsets",
]
