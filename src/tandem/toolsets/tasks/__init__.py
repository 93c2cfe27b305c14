"""The ``tasks`` toolset: the project's ``just`` recipes, listed and run safely."""

from __future__ import annotations

from tandem.core import Toolset

toolset = Toolset("tasks", description="The project's just recipes: list them, run one with arguments.")

__all__ = ["toolset"]
