"""The ``sdlc`` toolset: the plan -> consult -> implement -> validate -> commit loop of each session, the project's
policy rules, and the guardrail in front of every commit."""

from __future__ import annotations

from tandem.toolsets.sdlc.toolset import toolset

__all__ = ["toolset"]
