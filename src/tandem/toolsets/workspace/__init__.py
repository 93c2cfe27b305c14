"""The ``workspace`` toolset: confined file tools, fast search, and commands under the policy.

Every path goes through ``tandem.core.workspace_path`` and every subprocess through ``tandem.core.CommandRunner``.
"""

from __future__ import annotations

from tandem.toolsets.workspace import commands, files, listing, search  # noqa: F401  (they register the tools)
from tandem.toolsets.workspace.toolset import toolset

__all__ = ["toolset"]
