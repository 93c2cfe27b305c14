"""The ``sdlc`` toolset: the plan -> consult -> implement -> validate -> commit loop, and policy checks."""

from __future__ import annotations

from tandem.core import Toolset

toolset = Toolset("sdlc", description="The development loop's state and the project's policy rules.")

__all__ = ["toolset"]
