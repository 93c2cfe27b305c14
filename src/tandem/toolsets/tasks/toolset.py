"""The toolset object the tasks modules register their tools on."""

from __future__ import annotations

from tandem.core import Toolset

toolset = Toolset("tasks", description="The project's just recipes: list them, run one with arguments.")
