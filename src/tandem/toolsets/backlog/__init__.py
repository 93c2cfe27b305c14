"""The ``backlog`` toolset: read and write the project's Backlog.md tasks, in the files' own format, so the
``backlog`` CLI (npm ``backlog.md``) and Tandem can take turns on the same project."""

from __future__ import annotations

from tandem.toolsets.backlog import reading, writing  # noqa: F401  (they register the tools)
from tandem.toolsets.backlog.toolset import toolset

__all__ = ["toolset"]
