"""The ``catalog`` toolset: agents, skills and workflows found on demand, and orchestration patterns that learn."""

from __future__ import annotations

from tandem.toolsets.catalog.toolset import toolset

__all__ = ["toolset"]
