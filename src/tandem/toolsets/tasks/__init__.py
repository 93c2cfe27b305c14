"""The ``tasks`` toolset: the project's ``just`` recipes, listed and run safely."""

from __future__ import annotations

from tandem.toolsets.tasks import recipes, running  # noqa: F401  (they register the tools)
from tandem.toolsets.tasks.toolset import toolset

__all__ = ["toolset"]
