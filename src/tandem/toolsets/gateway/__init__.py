"""The ``gateway`` toolset: upstream MCP servers mounted under a namespace, and ``delegate``."""

from __future__ import annotations

from tandem.core import Toolset

toolset = Toolset("gateway", description="Upstream MCP servers (a coder) mounted under their namespace.")

__all__ = ["toolset"]
