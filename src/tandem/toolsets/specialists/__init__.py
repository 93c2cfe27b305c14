"""The ``specialists`` toolset: personas served as MCP prompts, and ``consult_specialist``."""

from __future__ import annotations

from tandem.core import Toolset

toolset = Toolset("specialists", description="Specialist personas (architect, SRE, security, QA, ...) to consult.")

__all__ = ["toolset"]
