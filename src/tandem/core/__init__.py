"""The core: registry, call context, errors, content types. It knows nothing of JSON-RPC or transports."""

from tandem.core import syntax_trees, text_files, worker_processes
from tandem.core.command_policy import CommandPolicy, CommandRefused
from tandem.core.commands import CommandFailed, CommandResult, CommandRunner
from tandem.core.content import (
    Audio,
    EmbeddedResource,
    Image,
    InputRequired,
    PromptMessage,
    ResourceLink,
    Summarized,
    Text,
    ToolResult,
)
from tandem.core.context import CallContext
from tandem.core.errors import ConfigError, InvalidArguments, MissingCapability, NotFound, TandemError, ToolError
from tandem.core.registry import Registry, ToolAnnotations, Toolset, discover_toolsets
from tandem.core.workspace_path import (
    PathRefused,
    open_in_workspace,
    relative_display,
    workspace_entry,
    workspace_path,
    write_atomic,
)

__all__ = [
    "Audio",
    "CallContext",
    "CommandFailed",
    "CommandPolicy",
    "CommandRefused",
    "CommandResult",
    "CommandRunner",
    "ConfigError",
    "EmbeddedResource",
    "Image",
    "InputRequired",
    "InvalidArguments",
    "MissingCapability",
    "NotFound",
    "PathRefused",
    "PromptMessage",
    "Registry",
    "ResourceLink",
    "Summarized",
    "TandemError",
    "Text",
    "ToolAnnotations",
    "ToolError",
    "ToolResult",
    "Toolset",
    "discover_toolsets",
    "open_in_workspace",
    "relative_display",
    "syntax_trees",
    "text_files",
    "worker_processes",
    "workspace_entry",
    "workspace_path",
    "write_atomic",
]
