"""File tools: read (line ranges, binary and encoding detection), write, edit (exact or by lines, with a diff and
a lost-update guard), information, and the directory and move / copy / delete operations."""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from tandem.core import CallContext, PathRefused, ToolError, open_in_workspace, text_files, write_atomic
from tandem.core.text_files import SNIFF_BYTES, FileText
from tandem.core.workspace_path import (
    copy_tree_in_workspace,
    make_directories,
    remove_in_workspace,
    rename_in_workspace,
)
from tandem.toolsets.workspace.toolset import toolset, writable

DEFAULT_LINES = 2000
RANGE_SCAN_BYTES = 1024 * 1024 * 1024
"""How far into a file over the size limit read_file streams looking for the asked lines."""
MAX_LINE_CHARS = 2000


def read_text(ctx: CallContext, path: Path) -> FileText:
    """The whole text of a confined file, refusing binaries and files over ``max_file_bytes``."""
    hint = "read a range of it (read_file with offset and limit) or search it with search_files"
    return text_files.read_text(ctx.workspace, path, ctx.settings.max_file_bytes, hint=hint)


def _read_bytes(ctx: CallContext, path: Path) -> bytes:
    return text_files.read_bytes(ctx.workspace, path, ctx.settings.max_file_bytes)


@toolset.tool(read_only=True, title="Read file")
async def read_file(
    ctx: CallContext,
    path: str,
    offset: Annotated[int, Field(ge=1)] = 1,
    limit: Annotated[int, Field(ge=1)] | None = None,
) -> str:
    """Read a text file with numbered lines (``cat -n`` style).

    ``offset`` is the first line to show (1-based) and ``limit`` how many lines (default 2000); the last line says
    how to read on when more remains. Binary files are refused. A file over the size limit is read only as a
    range: give ``offset`` and ``limit``.
    """
    resolved = ctx.path(path)
    count = limit if limit is not None else DEFAULT_LINES
    if limit is not None:
        ranged = await ctx.run_sync(lambda: _large_file_range(ctx, resolved, offset, count))
        if ranged is not None:
            return ranged
    content = await ctx.run_sync(lambda: read_text(ctx, resolved))
    lines = content.text.splitlines()
    shown = lines[offset - 1 : offset - 1 + count]
    if not lines:
        return f"{ctx.display(resolved)} is empty."
    if offset > len(lines):
        raise ToolError(f"{ctx.display(resolved)} has {len(lines)} lines; offset {offset} is past the end")
    width = len(str(offset + len(shown)))
    body = "\n".join(f"{n:>{width}}\t{_clip(line)}" for n, line in enumerate(shown, start=offset))
    last = offset + len(shown) - 1
    if last < len(lines):
        body += f"\n[lines {offset}-{last} of {len(lines)}; read on with offset={last + 1}]"
    if content.encoding != "utf-8":
        body += f"\n[decoded as {content.encoding}]"
    return body


def _large_file_range(ctx: CallContext, path: Path, offset: int, count: int) -> str | None:
    """Lines ``offset``.. of a file over the size limit, read as a stream; ``None`` for a file within the limit."""
    fd = open_in_workspace(ctx.workspace, path)
    with os.fdopen(fd, "rb") as handle:
        if os.fstat(handle.fileno()).st_size <= ctx.settings.max_file_bytes:
            return None
        head = handle.read(SNIFF_BYTES)
        if b"\x00" in head:
            raise ToolError(f"{ctx.display(path)} is a binary file; it cannot be read as text")
        handle.seek(0)
        shown: list[str] = []
        read = 0
        for number, raw in enumerate(handle, start=1):
            read += len(raw)
            if read > RANGE_SCAN_BYTES:
                break  # a range deeper into a huge file than this: search for it instead
            if number >= offset:
                shown.append(f"{number}\t{_clip(raw.decode('utf-8', errors='replace').rstrip(chr(10) + chr(13)))}")
                if len(shown) == count:
                    break
    if not shown:
        raise ToolError(f"no lines at offset {offset} within the first {RANGE_SCAN_BYTES} bytes; use search_files")
    last = offset + len(shown) - 1
    return "\n".join([*shown, f"[lines {offset}-{last} of a file over the size limit; read on with offset={last + 1}]"])


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + f" [... {len(line)} chars in all]"


@toolset.tool(read_only=True, title="Read several files")
async def read_multiple_files(
    ctx: CallContext, paths: Annotated[list[str], Field(min_length=1, max_length=100)]
) -> str:
    """Read several text files at once; each comes under a ``==> path <==`` header, and a file that cannot be
    read shows why instead of failing the whole call."""
    parts = []
    for path in paths:
        try:
            resolved = ctx.path(path)
            content = await ctx.run_sync(lambda resolved=resolved: read_text(ctx, resolved))
            parts.append(f"==> {ctx.display(resolved)} <==\n{content.text}")
        except ToolError as exc:
            parts.append(f"==> {path} <==\n[not read: {exc}]")
    return "\n\n".join(parts)


class WriteResult(BaseModel):
    path: str
    bytes: int
    created: bool
    sha256: str


@toolset.tool(destructive=True, title="Write file")
async def write_file(ctx: CallContext, path: str, content: str, create_dirs: bool = False) -> WriteResult:
    """Create or replace a file with ``content`` (UTF-8), atomically: readers never see half a file.

    ``create_dirs`` creates missing parent directories. An existing file keeps its permissions.
    """
    resolved = writable(ctx, ctx.path(path))
    data = content.encode("utf-8")
    if len(data) > ctx.settings.max_file_bytes:
        raise ToolError(f"the content is {len(data)} bytes, over the {ctx.settings.max_file_bytes}-byte limit")
    existed = await ctx.run_sync(lambda: write_atomic(ctx.workspace, resolved, data, create_dirs=create_dirs))
    return WriteResult(
        path=ctx.display(resolved), bytes=len(data), created=not existed, sha256=hashlib.sha256(data).hexdigest()
    )


class Edit(BaseModel):
    """One change: replace exact text (``old`` -> ``new``), or replace lines ``start_line``..``end_line``."""

    old: str | None = Field(None, description="Exact text to replace; it must occur once unless 'count' says more.")
    new: str = Field(description="The replacement text.")
    count: int | None = Field(None, ge=1, description="How many occurrences of 'old' to replace (all must exist).")
    start_line: int | None = Field(None, ge=1, description="First line to replace (1-based), instead of 'old'.")
    end_line: int | None = Field(None, ge=1, description="Last line to replace (inclusive); default start_line.")

    @model_validator(mode="after")
    def _one_kind(self) -> Edit:
        if (self.old is None) == (self.start_line is None):
            raise ValueError("give either 'old' (exact text) or 'start_line' (a line range), not both or neither")
        if self.old == "":
            raise ValueError("'old' must not be empty")
        if self.end_line is not None and self.start_line is not None and self.end_line < self.start_line:
            raise ValueError("end_line is before start_line")
        return self


class EditResult(BaseModel):
    path: str
    applied: bool = Field(description="False for a dry run.")
    replacements: int
    diff: str
    sha256: str = Field(description="The content hash after the edit; pass it as expected_hash next time.")


@toolset.tool(destructive=True, title="Edit file")
async def edit_file(
    ctx: CallContext,
    path: str,
    edits: Annotated[list[Edit], Field(min_length=1)],
    expected_hash: str | None = None,
    dry_run: bool = False,
) -> EditResult:
    """Apply edits to a text file in order and return a unified diff.

    An exact-text edit must match exactly once, or exactly ``count`` times; a line edit replaces a range of lines
    (as numbered by read_file). ``expected_hash`` (the sha256 read_file or a previous edit reported) refuses the
    edit if the file changed since. ``dry_run`` shows the diff without writing.
    """
    resolved = writable(ctx, ctx.path(path))

    def apply() -> EditResult:
        content = read_text(ctx, resolved)
        if expected_hash is not None and expected_hash.lower() != content.sha256:
            raise ToolError(
                f"{ctx.display(resolved)} changed since you read it (its sha256 is now {content.sha256}); "
                "read it again and redo the edit"
            )
        text, replacements = content.text, 0
        for number, edit in enumerate(edits, start=1):
            text, done = _apply(text, edit, number)
            replacements += done
        shown = ctx.display(resolved)
        diff = "".join(
            difflib.unified_diff(
                content.text.splitlines(keepends=True), text.splitlines(keepends=True), f"a/{shown}", f"b/{shown}"
            )
        )
        data = text.encode(content.encoding if content.encoding != "ascii" else "utf-8")
        if not dry_run and text != content.text:
            write_atomic(ctx.workspace, resolved, data)
        return EditResult(
            path=shown,
            applied=not dry_run,
            replacements=replacements,
            diff=diff or "(no change)",
            sha256=hashlib.sha256(data).hexdigest(),
        )

    return await ctx.run_sync(apply)


def _apply(text: str, edit: Edit, number: int) -> tuple[str, int]:
    if edit.old is not None:
        found = text.count(edit.old)
        wanted = edit.count or 1
        if found == 0:
            raise ToolError(f"edit {number}: the text to replace was not found; read the file and copy it exactly")
        if found != wanted:
            raise ToolError(
                f"edit {number}: the text to replace occurs {found} times, not {wanted}; add surrounding lines "
                f"to make it unique, or set count={found} to replace every occurrence"
            )
        return text.replace(edit.old, edit.new), found
    assert edit.start_line is not None
    lines = text.splitlines(keepends=True)
    start, end = edit.start_line, edit.end_line or edit.start_line
    if end > len(lines):
        raise ToolError(f"edit {number}: lines {start}-{end} are past the end of the file ({len(lines)} lines)")
    new = edit.new if edit.new.endswith("\n") or not edit.new else edit.new + "\n"
    return "".join([*lines[: start - 1], new, *lines[end:]]), 1


class FileInfo(BaseModel):
    path: str
    type: Literal["file", "directory", "symlink", "other"]
    size: int
    modified: str
    mode: str
    lines: int | None = Field(None, description="Line count, for text files under 1 MB.")
    symlink_target: str | None = Field(None, description="Where a symlink inside the workspace points.")


@toolset.tool(read_only=True, title="File info")
async def get_file_info(ctx: CallContext, path: str) -> FileInfo:
    """Describe a file or directory: type, size, modification time, permissions, and line count for text."""
    entry = ctx.entry(path)

    def describe() -> FileInfo:
        target = None
        resolved = entry
        if entry.is_symlink():
            resolved = ctx.path(path)  # refused when the link leads out of the workspace
            target = ctx.display(resolved)
        try:
            info = resolved.stat()
        except OSError:
            raise PathRefused(f"{path!r} does not exist") from None
        kind: Literal["file", "directory", "symlink", "other"] = (
            "directory" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "other"
        )
        lines = None
        if kind == "file" and info.st_size < 1024 * 1024:
            try:
                lines = len(read_text(ctx, resolved).text.splitlines())
            except ToolError:
                lines = None
        return FileInfo(
            path=ctx.display(resolved),
            type="symlink" if target is not None else kind,
            size=info.st_size,
            modified=datetime.fromtimestamp(info.st_mtime, UTC).isoformat(timespec="seconds"),
            mode=oct(stat.S_IMODE(info.st_mode)),
            lines=lines,
            symlink_target=target,
        )

    return await ctx.run_sync(describe)


@toolset.tool(idempotent=True, destructive=False, title="Create directory")
async def create_directory(ctx: CallContext, path: str) -> str:
    """Create a directory and any missing parents; an existing directory is fine."""
    resolved = writable(ctx, ctx.path(path))

    await ctx.run_sync(lambda: make_directories(ctx.workspace, resolved))
    return f"directory {ctx.display(resolved)} is there"


@toolset.tool(destructive=True, title="Move file")
async def move_file(ctx: CallContext, source: str, destination: str, overwrite: bool = False) -> str:
    """Move or rename a file or directory inside the workspace; refuses to replace an existing one unless
    ``overwrite`` (a directory is never replaced). A symlink is moved as a link."""
    src = writable(ctx, ctx.entry(source))
    dst = writable(ctx, ctx.entry(destination))
    await ctx.run_sync(lambda: rename_in_workspace(ctx.workspace, src, dst, replace=overwrite))
    return f"moved {ctx.display(src)} to {ctx.display(dst)}"


@toolset.tool(destructive=True, title="Copy file")
async def copy_file(ctx: CallContext, source: str, destination: str, overwrite: bool = False) -> str:
    """Copy a file or a directory tree inside the workspace; symlinks in a tree are copied as links."""
    src = ctx.path(source)
    dst = writable(ctx, ctx.path(destination))

    def copy() -> str:
        if not src.exists():
            raise ToolError(f"{source!r} does not exist")
        if dst.exists() and (not overwrite or dst.is_dir() or src.is_dir()):
            raise ToolError(f"{ctx.display(dst)} already exists; pass overwrite=true to replace a file")
        if src.is_dir():
            if dst == src or dst.is_relative_to(src):
                raise ToolError("cannot copy a directory into itself")
            count = copy_tree_in_workspace(ctx.workspace, src, dst)
            return f"copied {ctx.display(src)} to {ctx.display(dst)} ({count} files)"
        mode = stat.S_IMODE(src.stat().st_mode)
        write_atomic(ctx.workspace, dst, _read_bytes(ctx, src), mode=mode)
        return f"copied {ctx.display(src)} to {ctx.display(dst)}"

    return await ctx.run_sync(copy)


@toolset.tool(destructive=True, title="Delete file")
async def delete_file(ctx: CallContext, path: str, recursive: bool = False) -> str:
    """Delete a file, a symlink (not what it points to), or with ``recursive`` a directory tree."""
    target = writable(ctx, ctx.entry(path))
    if target == ctx.path("."):
        raise ToolError("the workspace root cannot be deleted")
    await ctx.run_sync(lambda: remove_in_workspace(ctx.workspace, target, recursive=recursive))
    return f"deleted {ctx.display(target)}"
