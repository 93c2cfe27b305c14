"""The toolset object the git modules register their tools on, and the repository lookup they share."""

from __future__ import annotations

from tandem.core import CallContext, Toolset
from tandem.core.git_command import Repository, open_repository

toolset = Toolset(
    "git",
    description="Git on the workspace's repository: status, diff, log, show, branches, add, commit, stash, restore, "
    "and clone / fetch / pull / push to allowed remotes.",
)

MAX_TEXT = 100_000
"""Characters of a diff or file a git tool returns before it cuts (and says so)."""


async def repository(ctx: CallContext, repo: str = ".") -> Repository:
    """The repository holding the workspace directory ``repo``."""
    return await open_repository(ctx.commands, ctx.workspace, ctx.settings.git, repo, ctx.roots)


def cut(text: str, limit: int = MAX_TEXT) -> tuple[str, bool]:
    """``text`` up to ``limit`` characters, and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit] + f"\n[... cut: {len(text) - limit} more characters ...]\n", True
