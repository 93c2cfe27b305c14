"""The ``specialists`` toolset: personas served as MCP prompts, and ``consult_specialist``."""

from __future__ import annotations

from tandem.toolsets.specialists.toolset import toolset

__all__ = ["toolset"]
