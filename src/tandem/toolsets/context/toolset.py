"""The ``context`` toolset: the whole codebase, or part of it, packed into one text with exact token counts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from tandem.core import CallContext, ToolError, Toolset, text_files
from tandem.core.content import Text, ToolResult
from tandem.core.file_list import list_files
from tandem.core.tokens import EncodingName
from tandem.core.workspace_path import relative_display
from tandem.toolsets.context.pack import DEFAULT_IGNORES, Pack, PackedFile, Style, build

toolset = Toolset(
    "context",
    description="The codebase packed for a model to read: directory tree and files, with exact token counts.",
)

MAX_PACK_FILES = 20_000
Glob = Annotated[str, Field(min_length=1, max_length=300)]


def _globs(include: list[str] | None, ignore: list[str] | None) -> list[str]:
    globs = list(include or [])
    for pattern in [*DEFAULT_IGNORES, *(ignore or [])]:
        if pattern.startswith("!"):
            raise ToolError(f"ignore pattern {pattern!r}: give the pattern without '!'")
        globs.append(f"!{pattern}")
    return globs


def _read(root: Path, paths: list[Path], max_bytes: int) -> tuple[list[PackedFile], list[dict[str, str]]]:
    files, skipped = [], []
    for path in paths:
        shown = relative_display(root, path)
        try:
            data = text_files.read_bytes(root, path, max_bytes)
        except ToolError as exc:
            skipped.append({"path": shown, "reason": str(exc)})
            continue
        except OSError as exc:
            skipped.append({"path": shown, "reason": exc.strerror or str(exc)})
            continue
        if b"\x00" in data[: text_files.SNIFF_BYTES]:
            skipped.append({"path": shown, "reason": "binary"})
            continue
        text, _encoding = text_files.decode(data)
        files.append(PackedFile(shown, text))
    return files, skipped


def _stats(pack: Pack, top: int) -> dict[str, object]:
    return {
        "root": pack.root,
        "style": pack.style,
        "encoding": pack.encoding,
        "file_count": len(pack.files),
        "total_tokens": pack.total_tokens,
        "total_chars": pack.total_chars,
        "file_tokens": sum(f.tokens for f in pack.files),
        "top_files": pack.top_files(top),
        "skipped": pack.skipped,
    }


@toolset.tool(read_only=True, title="Pack the codebase")
async def pack_codebase(
    ctx: CallContext,
    path: Annotated[str, Field(max_length=1000, description="Directory or file to pack, in the workspace.")] = ".",
    include: Annotated[list[Glob] | None, Field(max_length=100, description="Only files matching these globs.")] = None,
    ignore: Annotated[list[Glob] | None, Field(max_length=100, description="Leave out these globs too.")] = None,
    style: Style = "xml",
    top_files: Annotated[int, Field(ge=0, le=100, description="How many of the largest files to list.")] = 5,
    encoding: Annotated[EncodingName, Field(description="tiktoken encoding the counts use.")] = "o200k_base",
) -> ToolResult:
    """Pack files of the workspace into one text for a model: the directory tree, then every file with its path.
    .gitignore is honoured, dependencies, builds, caches and lock files are left out, binaries are skipped. The
    result starts with the counts (total tokens, the largest files, what was skipped), then the pack itself."""
    root = ctx.path(path)
    listed, cut = await list_files(
        ctx.commands, [root], globs=_globs(include, ignore), include_hidden=True, max_files=MAX_PACK_FILES
    )
    await ctx.report_progress(0, len(listed), f"reading {len(listed)} files")
    files, skipped = await ctx.run_sync(lambda: _read(ctx.workspace, listed, ctx.settings.max_file_bytes))
    await ctx.report_progress(len(listed) / 2, len(listed), "counting tokens")
    pack = await ctx.run_sync(
        lambda: build(relative_display(ctx.workspace, root), files, style=style, encoding=encoding, skipped=skipped)
    )
    await ctx.report_progress(len(listed), len(listed), "packed")
    stats = _stats(pack, top_files)
    if cut:
        stats["truncated"] = f"only the first {MAX_PACK_FILES} files were packed"
    largest = ", ".join(f"{f['path']} ({f['tokens']:,})" for f in stats["top_files"])  # type: ignore[attr-defined]
    summary = (
        f"Packed {len(pack.files)} files from {pack.root}: {pack.total_tokens:,} tokens ({encoding}), "
        f"{pack.total_chars:,} characters; {len(skipped)} skipped" + (f"; largest: {largest}" if largest else "")
    )
    return ToolResult(content=[Text(summary), Text(pack.output)], structured=stats)
