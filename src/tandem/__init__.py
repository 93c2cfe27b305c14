"""Tandem: an MCP server that gives AI coding assistants a brain and hands for a real codebase."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tandem")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

from tandem.config import Settings, load_settings
from tandem.core import (
    CallContext,
    ConfigError,
    Registry,
    Summarized,
    ToolError,
    ToolResult,
    Toolset,
)

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
