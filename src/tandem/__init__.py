"""Tandem: an MCP server that gives AI coding assistants a brain and hands for a real codebase.

The public names below are loaded on first use (PEP 562), so a process that needs one module of Tandem (a worker,
``tandem pack``) does not pay for importing all of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tandem.config import Settings, load_settings
    from tandem.core import CallContext, ConfigError, Registry, Summarized, ToolError, ToolResult, Toolset

__all__ = [
    "CallContext",
    "ConfigError",
    "Registry",
    "Settings",
    "Summarized",
    "ToolError",
    "ToolResult",
    "Toolset",
    "__version__",
    "load_settings",
]

_HOMES = {"Settings": "tandem.config", "load_settings": "tandem.config"} | dict.fromkeys(
    ["CallContext", "ConfigError", "Registry", "Summarized", "ToolError", "ToolResult", "Toolset"], "tandem.core"
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tandem")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+source"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'tandem' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
