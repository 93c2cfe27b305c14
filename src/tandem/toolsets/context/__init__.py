"""The ``context`` toolset: codebase packing with exact token counts (the brain's view of a repository)."""

from __future__ import annotations

from tandem.toolsets.context.toolset import toolset

__all__ = ["toolset"]
