"""The toolset object the workspace modules register their tools on, and the rules they share."""

from __future__ import annotations

from pathlib import Path

from tandem.core import CallContext, PathRefused, Toolset

CONFIG_FILE = "tandem.toml"
"""Tandem's settings file in the workspace (read at startup, never written by a tool)."""

toolset = Toolset(
    "workspace",
    description="Read, write, edit, list and search files in the workspace, and run commands under its policy.",
)


def writable(ctx: CallContext, path: Path) -> Path:
    """Refuse a write to what steers Tandem itself: its settings, its data, and git's internals (unless allowed)."""
    shown = ctx.display(path)
    parts = Path(shown).parts
    if shown == CONFIG_FILE:
        raise PathRefused(f"{CONFIG_FILE} holds Tandem's own settings (its command policy too); edit it by hand")
    data = ctx.settings.data_path
    if not data.is_absolute():
        data = ctx.workspace / data
    try:
        inside_data = path == ctx.path(str(data)) or path.is_relative_to(ctx.path(str(data)))
    except PathRefused:
        inside_data = False
    if inside_data:
        raise PathRefused(f"{shown} is inside Tandem's data directory, which tools do not write")
    if parts and parts[0] == ".git" and not ctx.settings.git_internals_writable:
        raise PathRefused(
            f"{shown} is inside .git/, which file tools do not change (use the git tools, or set "
            "git_internals_writable = true)"
        )
    return path
