"""The core: registry, call context, errors, content types. It knows nothing of JSON-RPC or transports.

The names below are loaded on first use (PEP 562): a process that needs one module of the core (a worker process
and its fork server need the secret scanner, not pydantic's models of command policies) does not import all of
them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Imported now, light as they are: ``workspace_path`` names a function and the module it is in, and only an import
# here keeps the package's name the function (a module's first import sets its package's attribute to itself).
from tandem.core.errors import ConfigError, InvalidArguments, MissingCapability, NotFound, TandemError, ToolError
from tandem.core.workspace_path import (
    PathRefused,
    open_in_workspace,
    relative_display,
    workspace_entry,
    workspace_path,
    write_atomic,
)

if TYPE_CHECKING:
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
    from tandem.core.registry import Registry, ToolAnnotations, Toolset, discover_toolsets

_HOMES = {
    **dict.fromkeys(["CommandPolicy", "CommandRefused"], "command_policy"),
    **dict.fromkeys(["CommandFailed", "CommandResult", "CommandRunner"], "commands"),
    **dict.fromkeys(
        [
            *("Audio", "EmbeddedResource", "Image", "InputRequired", "PromptMessage"),
            *("ResourceLink", "Summarized", "Text", "ToolResult"),
        ],
        "content",
    ),
    "CallContext": "context",
    **dict.fromkeys(["Registry", "ToolAnnotations", "Toolset", "discover_toolsets"], "registry"),
}
"""Each public name -> the module of the core it comes from."""
_SUBMODULES = ("syntax_trees", "text_files", "worker_processes")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f"{__name__}.{name}")
    elif name in _HOMES:
        value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


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
