"""The ``conformance`` toolset: the fixtures the official MCP conformance suite calls. Off by default."""

from tandem.toolsets.conformance.fixtures import toolset

__all__ = ["toolset"]
