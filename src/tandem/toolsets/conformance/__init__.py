"""The ``conformance`` toolset: the fixtures the official MCP conformance suite calls, and the few Tandem's own
transport tests need. Off by default; ``tandem serve --toolsets conformance`` serves it."""

from tandem.toolsets.conformance import content, input_required, prompts, resources, tasks  # noqa: F401  (registration)
from tandem.toolsets.conformance.toolset import toolset

__all__ = ["toolset"]
