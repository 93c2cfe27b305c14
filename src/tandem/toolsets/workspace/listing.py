"""Directory listings and trees that respect ``.gitignore`` (every level's, as git does) and hide ``.git``."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pathspec import GitIgnoreSpec
from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError, open_in_workspace
from tandem.toolsets.workspace.toolset import toolset

MAX_ENTRIES = 5000
_SUBDIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class _Ignore:
    """The ``.gitignore`` rules in force in one directory: its own and its parents', each relative to its file."""

    rules: tuple[tuple[Path, GitIgnoreSpec], ...] = ()

    def below(self, directory: Path) -> _Ignore:
        gitignore = directory / ".gitignore"
        if not gitignore.is_file() or gitignore.is_symlink():
            return self
        try:
            lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return self
        return _Ignore((*self.rules, (directory, GitIgnoreSpec.from_lines(lines))))

    def ignores(self, path: Path, is_dir: bool) -> bool:
        ignored = False
        for base, spec in self.rules:
            relative = path.relative_to(base).as_posix() + ("/" if is_dir else "")
            result = spec.check_file(relative)
            if result.include is not None:
                ignored = result.include
        return ignored


class Entry(BaseModel):
    path: str
    type: Literal["file", "directory", "symlink", "other"]
    size: int | None = None


class Listing(BaseModel):
    entries: list[Entry]
    truncated: bool = Field(description="True when more entries exist than were listed.")


def _ignore_for(ctx: CallContext, directory: Path) -> _Ignore:
    """The ignore rules in force at ``directory``: those of every directory from the workspace root down to it."""
    root = ctx.path(".")
    ignore = _Ignore()
    current = root
    ignore = ignore.below(current)
    for part in directory.relative_to(root).parts:
        current = current / part
        ignore = ignore.below(current)
    return ignore


def _walk(
    ctx: CallContext, start: Path, depth: int, include_hidden: bool, ignored: bool
) -> Iterator[tuple[Path, os.DirEntry[str], int]]:
    """Entries under ``start`` down to ``depth`` levels, sorted, directories first. Each directory is opened from
    its parent's descriptor without following symlinks, so a directory swapped for a link is not walked into."""
    rules = _ignore_for(ctx, start)

    def visit(fd: int, directory: Path, rules: _Ignore, level: int) -> Iterator[tuple[Path, os.DirEntry[str], int]]:
        try:
            with os.scandir(fd) as scan:
                entries = sorted(scan, key=lambda e: (not e.is_dir(follow_symlinks=False), e.name))
        except OSError:
            return
        for entry in entries:
            if entry.name == ".git" or (not include_hidden and entry.name.startswith(".")):
                continue
            path = directory / entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if not ignored and rules.ignores(path, is_dir):
                continue
            yield path, entry, level
            if is_dir and level < depth:
                try:
                    child = os.open(entry.name, _SUBDIRECTORY, dir_fd=fd)
                except OSError:
                    continue
                try:
                    yield from visit(child, path, rules.below(path), level + 1)
                finally:
                    os.close(child)

    top = open_in_workspace(ctx.workspace, start, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield from visit(top, start, rules, 1)
    finally:
        os.close(top)


def _kind(entry: os.DirEntry[str]) -> Literal["file", "directory", "symlink", "other"]:
    if entry.is_symlink():
        return "symlink"
    if entry.is_dir(follow_symlinks=False):
        return "directory"
    return "file" if entry.is_file(follow_symlinks=False) else "other"


@toolset.tool(read_only=True, title="List directory")
async def list_directory(
    ctx: CallContext,
    path: str = ".",
    depth: Annotated[int, Field(ge=1, le=20)] = 1,
    pattern: str | None = None,
    include_hidden: bool = False,
    include_ignored: bool = False,
    max_entries: Annotated[int, Field(ge=1, le=MAX_ENTRIES)] = 1000,
) -> Listing:
    """List a directory's entries (``depth`` levels down), skipping what ``.gitignore`` ignores and ``.git``.

    ``pattern`` keeps names matching a glob (``*.py``); hidden entries (dot-names) show with ``include_hidden``,
    ignored ones with ``include_ignored``. Paths are relative to the workspace root.
    """
    start = ctx.path(path)

    def collect() -> Listing:
        if not start.is_dir():
            raise ToolError(f"{path!r} is not a directory")
        entries: list[Entry] = []
        for item, entry, _ in _walk(ctx, start, depth, include_hidden, include_ignored):
            if pattern is not None and not fnmatch.fnmatch(entry.name, pattern):
                continue
            if len(entries) == max_entries:
                return Listing(entries=entries, truncated=True)
            kind = _kind(entry)
            size = entry.stat(follow_symlinks=False).st_size if kind == "file" else None
            entries.append(Entry(path=ctx.display(item), type=kind, size=size))
        return Listing(entries=entries, truncated=False)

    return await ctx.run_sync(collect)


@toolset.tool(read_only=True, title="Directory tree")
async def directory_tree(
    ctx: CallContext,
    path: str = ".",
    depth: Annotated[int, Field(ge=1, le=20)] = 3,
    include_hidden: bool = False,
    max_entries: Annotated[int, Field(ge=1, le=MAX_ENTRIES)] = 1000,
) -> str:
    """Draw the directory tree under ``path`` (``depth`` levels), directories first, ``.gitignore`` respected."""
    start = ctx.path(path)

    def draw() -> str:
        if not start.is_dir():
            raise ToolError(f"{path!r} is not a directory")
        lines = [ctx.display(start) + "/"]
        for count, (_, entry, level) in enumerate(_walk(ctx, start, depth, include_hidden, False)):
            if count == max_entries:
                lines.append(f"[... more entries; stopped at {max_entries}]")
                break
            suffix = "/" if entry.is_dir(follow_symlinks=False) else ""
            if entry.is_symlink():
                suffix = " -> (symlink)"
            lines.append("    " * level + entry.name + suffix)
        return "\n".join(lines)

    return await ctx.run_sync(draw)
