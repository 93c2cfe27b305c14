"""The toolset object the backlog modules register their tools on."""

from __future__ import annotations

from tandem.core import Toolset

toolset = Toolset(
    "backlog",
    description="The project's Backlog.md tasks (backlog/tasks/*.md): list, view, search, create, edit, complete; "
    "files are written exactly as the backlog CLI writes them.",
)
