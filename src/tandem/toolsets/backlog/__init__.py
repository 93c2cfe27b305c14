"""The ``backlog`` toolset: read and write the project's Backlog.md tasks."""

from __future__ import annotations

from tandem.core import Toolset

toolset = Toolset("backlog", description="The project's Backlog.md tasks: list, view, search, create, edit, complete.")

__all__ = ["toolset"]
