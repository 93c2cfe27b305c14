"""The ``git`` toolset: the workspace's repository through the git CLI, every command through
``tandem.core.git_command`` (validated arguments, confined paths, hostile repository config neutralized)."""

from __future__ import annotations

from tandem.toolsets.git import changes, history, remotes  # noqa: F401  (they register the tools)
from tandem.toolsets.git.toolset import toolset

__all__ = ["toolset"]
