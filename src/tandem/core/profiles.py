"""Profiles: which role a server plays, and so which toolsets it serves when ``toolsets`` is not set.

``full`` serves every built-in toolset (but ``conformance``); ``coder`` serves the hands (files, commands, code,
git); ``orchestrator`` serves the brain (context, specialists, catalog, backlog, tasks, the development loop) plus
git, so that commits pass its guardrails, and the gateway that mounts a coder as an upstream server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tandem.config import Settings

Profile = Literal["full", "orchestrator", "coder"]

PROFILE_TOOLSETS: dict[Profile, tuple[str, ...] | None] = {
    "full": None,
    "coder": ("server", "workspace", "code", "git"),
    "orchestrator": ("server", "context", "catalog", "specialists", "backlog", "tasks", "sdlc", "git", "gateway"),
}
"""The toolsets of each profile; ``None`` is every installed toolset but ``conformance``."""


def toolsets_for(settings: Settings) -> list[str] | None:
    """The toolsets ``settings`` ask for: ``toolsets`` when it is set, else those of ``profile`` (``None``: all)."""
    if settings.toolsets is not None:
        return list(settings.toolsets)
    chosen = PROFILE_TOOLSETS[settings.profile]
    return None if chosen is None else list(chosen)
