"""The ``context`` toolset: the whole codebase, or part of it, packed into one text with exact token counts."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from tandem.core import CallContext, ToolError, Toolset, secret_engine, text_files, tokens, worker_processes
from tandem.core.content import Text, ToolResult
from tandem.core.file_list import list_files, ripgrep
from tandem.core.git_command import open_repository
from tandem.core.secret_engine import content_digest, scan_diff_text, scan_files, secret_lines_in_text
from tandem.core.tokens import EncodingName
from tandem.core.workspace_path import relative_display
from tandem.toolsets.context.pack import DEFAULT_IGNORES, Pack, PackedFile, Style, build
from tandem.toolsets.context.store import PackStore

if TYPE_CHECKING:
    from tandem.config import Settings

toolset = Toolset(
    "context",
    description="The codebase packed for a model to read: directory tree and files, with exact token counts.",
)

MAX_PACK_FILES = 20_000
MAX_READ_LINES = 2_000
"""Lines read_packed returns at most in one call."""
COMPRESS_BATCH_FILES = 250
COMPRESS_BATCH_CHARS = 2_000_000
"""One compression call's share; a codebase of more than two such batches is compressed in the worker processes,
a smaller one in a thread (starting the processes would cost more than they save)."""


@toolset.service
@contextlib.contextmanager
def _packs(settings: Settings) -> Iterator[PackStore]:
    yield PackStore(settings.data_path / "packs")


WARM_WORKERS = 2
"""Worker processes a server starts ahead (some 45 MB each); a scan that can use more starts the others."""


@toolset.warm_up
def _warm_up(settings: Settings) -> None:
    """What a server's first pack would otherwise start itself: worker processes with detect-secrets loaded and
    the default encoding's token counter built (they scan the files and count their tokens), and here detect-secrets
    (for the text scanned in this process: a diff, a specialist's question)."""
    worker_processes.preload(secret_engine.PREPARED)
    worker_processes.preload(tokens.PREPARED)
    worker_processes.start(WARM_WORKERS)
    secret_engine.prepare()


def _store(ctx: CallContext) -> PackStore:
    return ctx.service("context")


Glob = Annotated[str, Field(min_length=1, max_length=300)]


def _globs(include: list[str] | None, ignore: list[str] | None) -> list[str]:
    globs = list(include or [])
    for pattern in [*DEFAULT_IGNORES, *(ignore or [])]:
        if pattern.startswith("!"):
            raise ToolError(f"ignore pattern {pattern!r}: give the pattern without '!'")
        globs.append(f"!{pattern}")
    return globs


def _read(
    root: Path, paths: list[Path], max_bytes: int
) -> tuple[list[PackedFile], list[dict[str, str]], dict[str, bytes]]:
    """The text files, those left out and why, and each text file's content digest (what its secret scan must
    be of)."""
    files, skipped, digests = [], [], {}
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
        digests[shown] = content_digest(data)
    return files, skipped, digests


def _counting(texts: list[str], encoding: EncodingName) -> threading.Thread:
    """``count_many(texts)`` started in a thread of its own, so that the pack's count finds them known (files
    left out for a secret are counted too: a few, and their counts are kept like any other, so that a repeated
    pack needs no token counter); a failure is left for the pack's own count to meet."""

    def run() -> None:
        with contextlib.suppress(Exception):
            tokens.count_many(texts, encoding)

    thread = threading.Thread(target=run, name="tandem-pack-counting", daemon=True)
    thread.start()
    return thread


def _stats(pack: Pack, top: int) -> dict[str, Any]:
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


def _part_lines(pack: Pack) -> list[dict[str, Any]]:
    """Each part's place in the stored text (1-based lines), its tokens and files."""
    described, line = [], 1
    for number, part in enumerate(pack.parts, 1):
        count = part.text.count("\n")
        described.append(
            {
                "part": number,
                "tokens": part.tokens,
                "start_line": line,
                "end_line": line + count - 1,
                "files": part.files,
            }
        )
        line += count
    return described


@toolset.tool(read_only=True, title="Pack the codebase")
async def pack_codebase(
    ctx: CallContext,
    path: Annotated[str, Field(max_length=1000, description="Directory or file to pack, in the workspace.")] = ".",
    include: Annotated[list[Glob] | None, Field(max_length=100, description="Only files matching these globs.")] = None,
    ignore: Annotated[list[Glob] | None, Field(max_length=100, description="Leave out these globs too.")] = None,
    style: Style = "xml",
    top_files: Annotated[int, Field(ge=0, le=100, description="How many of the largest files to list.")] = 5,
    encoding: Annotated[EncodingName, Field(description="tiktoken encoding the counts use.")] = "o200k_base",
    line_numbers: Annotated[bool, Field(description="Number each file's lines.")] = False,
    token_budget: Annotated[
        int | None, Field(ge=500, le=10_000_000, description="Split into parts of at most this many tokens.")
    ] = None,
    include_diff: Annotated[bool, Field(description="Add the git diff of the working tree against HEAD.")] = False,
    include_log: Annotated[bool, Field(description="Add the recent git log.")] = False,
    log_count: Annotated[int, Field(ge=1, le=500, description="Commits in the log.")] = 20,
    leave_out_secrets: Annotated[
        bool, Field(description="Scan with detect-secrets and leave out (and list) files holding a secret.")
    ] = True,
    compress: Annotated[
        bool,
        Field(
            description="Cut source files to their skeleton: imports, signatures, types, comments and docstrings "
            "kept, function bodies dropped (tree-sitter; C, C++, C#, CSS, Dart, Go, Java, JS, PHP, Python, Ruby, "
            "Rust, Solidity, Swift, TS, TSX, Vue, Kotlin). A file that does not parse, or is minified, is sent whole "
            "and listed."
        ),
    ] = False,
) -> ToolResult:
    """Pack files of the workspace into one text for a model: the directory tree, then every file with its path.
    .gitignore is honoured, dependencies, builds, caches and lock files are left out, binaries are skipped. The
    result starts with the counts (total tokens, the largest files, what was skipped), then the pack itself; with
    ``token_budget``, only part 1 follows, and read_packed(pack_id, part=N) gives the others. Every pack is kept
    under its ``pack_id`` for read_packed and grep_packed. With ``compress``, function bodies are dropped and
    marked (``{ /* … */ }``, ``...``, ``# …``) so a whole codebase's shape fits in far fewer tokens; with
    ``line_numbers`` too, each kept line shows its number in the real file, for reading a body there."""
    root = ctx.path(path)
    listed, cut = await list_files(
        ctx.commands, [root], globs=_globs(include, ignore), include_hidden=True, max_files=MAX_PACK_FILES
    )
    await ctx.report_progress(0, len(listed), f"reading {len(listed)} files")
    files, skipped, digests = await ctx.run_sync(lambda: _read(ctx.workspace, listed, ctx.settings.max_file_bytes))
    if leave_out_secrets and files:
        # What the pack counts is these texts (unless cut or numbered first): they are counted while they are
        # scanned, in the worker processes where they run (this thread waits on them), else in this process.
        counting = None if compress or line_numbers else _counting([f.text for f in files], encoding)
        files, with_secrets = await _without_secrets(ctx, files, digests)
        if counting is not None:
            await ctx.run_sync(counting.join)
        skipped += with_secrets
    compression = None
    if compress and files:
        await ctx.report_progress(len(listed) / 4, len(listed), "compressing")
        files, compression = await _compressed(ctx, files)
    await ctx.report_progress(len(listed) / 2, len(listed), "counting tokens")
    shown_root = relative_display(ctx.workspace, root)
    sections = await _git_sections(ctx, root, include_diff, include_log, log_count)
    if leave_out_secrets and include_diff:
        held = {entry["path"] for entry in skipped if entry["reason"].startswith("holds a secret")}
        sections, diff_secrets = await _diff_without_secrets(ctx, sections, held)
        skipped += diff_secrets
    pack = await ctx.run_sync(
        lambda: build(
            shown_root,
            files,
            style=style,
            encoding=encoding,
            skipped=skipped,
            line_numbers=line_numbers,
            token_budget=token_budget,
            sections=sections,
            compressed=compress,
        )
    )
    stats = _stats(pack, top_files)
    if compression is not None:
        stats["compressed"] = compression
    if cut:
        stats["truncated"] = f"only the first {MAX_PACK_FILES} files were packed"
    stored = "".join(part.text for part in pack.parts) if pack.parts else pack.output
    if pack.parts:
        stats["parts"] = _part_lines(pack)
    stats["pack_id"] = await ctx.run_sync(lambda: _store(ctx).save(stored, stats))
    await ctx.report_progress(len(listed), len(listed), "packed")
    largest = ", ".join(f"{f['path']} ({f['tokens']:,})" for f in stats["top_files"])
    summary = (
        f"Packed {len(pack.files)} files from {pack.root} as pack {stats['pack_id']}: {pack.total_tokens:,} tokens "
        f"({encoding}), {pack.total_chars:,} characters; {len(skipped)} skipped"
        + (f"; largest: {largest}" if largest else "")
        + (_compression_line(compression) if compression is not None else "")
        + (f"; {len(pack.parts)} parts of at most {token_budget:,} tokens, part 1 follows" if pack.parts else "")
    )
    body = pack.parts[0].text if pack.parts else pack.output
    return ToolResult(content=[Text(summary), Text(body)], structured=stats)


async def _compressed(ctx: CallContext, files: list[PackedFile]) -> tuple[list[PackedFile], dict[str, Any]]:
    """The files, each in a language compression supports cut to its skeleton, and how many were and which fell
    back to their full text (with why)."""
    # Loaded here: tree-sitter's grammars cost every other pack (and every ``tandem pack``) their import time.
    from tandem.toolsets.context.compress import compress_files, language_for

    chosen = [(index, f, language) for index, f in enumerate(files) if (language := language_for(f.path))]
    batches: list[list[tuple[int, PackedFile, str]]] = []
    size = 0
    for entry in chosen:
        if not batches or size + len(entry[1].text) > COMPRESS_BATCH_CHARS or len(batches[-1]) >= COMPRESS_BATCH_FILES:
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += len(entry[1].text)
    calls = [functools.partial(compress_files, [(f.text, language) for _, f, language in batch]) for batch in batches]
    out, fell_back = list(files), []
    with worker_processes.in_order(calls, ctx.run_sync) as outcomes:
        for batch, outcome in zip(batches, outcomes, strict=True):
            for (index, f, _), result in zip(batch, await outcome, strict=True):
                if isinstance(result, str):
                    fell_back.append({"path": f.path, "reason": result})
                else:
                    out[index] = PackedFile(f.path, result.text, lines=result.lines)
    return out, {"files": len(chosen) - len(fell_back), "fell_back": fell_back}


def _compression_line(compression: dict[str, Any]) -> str:
    fell_back = compression["fell_back"]
    minified = sum(entry["reason"] == "minified" for entry in fell_back)
    why = [w for n, w in ((len(fell_back) - minified, "tree-sitter found syntax errors"), (minified, "minified")) if n]
    whole = f" ({len(fell_back)} sent whole: {', '.join(why)})" if fell_back else ""
    return f"; {compression['files']} files compressed{whole}"


async def _without_secrets(
    ctx: CallContext, files: list[PackedFile], digests: dict[str, bytes]
) -> tuple[list[PackedFile], list[dict[str, str]]]:
    """The files detect-secrets finds nothing in, scanned as read (``digests``), and the others as skipped entries:
    those holding a secret (kind and line, never the secret), and those it could not vouch for (changed since they
    were read, or no longer readable). ``pragma: allowlist secret`` on a line keeps it from counting."""
    names = [f.path for f in files]
    scan = await scan_files(ctx, None, "pack_codebase", names, digests, hashes=False, every_text=True)
    where: dict[str, list[str]] = {}
    for secret in scan.found:
        where.setdefault(secret["path"], []).append(f"{secret['type']} on line {secret['line']}")
    left_out = [{"path": path, "reason": f"holds a secret: {', '.join(seen)}"} for path, seen in sorted(where.items())]
    unscanned = scan.unscanned(names)
    left_out += [{"path": path, "reason": f"not scanned for secrets: {why}"} for path, why in sorted(unscanned.items())]
    kept = [f for f in files if f.path not in where and f.path not in unscanned]
    return kept, left_out


async def _diff_without_secrets(
    ctx: CallContext, sections: list[PackedFile], held: set[str]
) -> tuple[list[PackedFile], list[dict[str, str]]]:
    """The git sections with the diff of every file that holds a secret taken out: one the file scan found, one
    whose added lines add one, and one any of whose lines (context and removed lines too, of files outside the
    pack as well) reads as a secret."""
    kept, left_out = [], []
    for section in sections:
        if section.kind != "git_diff" or not section.text.startswith("diff --git "):
            kept.append(section)
            continue
        future = worker_processes.submit(scan_diff_text, str(ctx.path(".")), None, "pack_codebase", section.text)
        found, _files = await worker_processes.result(future)
        bad = held | {secret["path"] for secret in found}
        blocks = re.split(r"(?m)^(?=diff --git )", section.text)
        flagged = await ctx.run_sync(lambda text=section.text: secret_lines_in_text(text.split("\n")))
        clean, line = [], 1
        for block in filter(None, blocks):
            path = _diff_path(block)
            lines = range(line, line + block.count("\n") + 1)  # and the next block's first: fails closed
            line += block.count("\n")
            if path in bad or any(number in flagged for number in lines):
                left_out.append({"path": f"git diff of {path}", "reason": "holds a secret"})
            else:
                clean.append(block)
        kept.append(PackedFile(section.path, "".join(clean) or "(no changes shown)\n", kind="git_diff"))
    return kept, left_out


def _diff_path(block: str) -> str:
    """The new path of one file's diff (``+++ b/path``; the ``diff --git`` line for a deletion or a binary)."""
    for line in block.splitlines():
        if line.startswith("+++ b/"):
            return line[len("+++ b/") :]
        if line.startswith("@@"):
            break
    first = block.split("\n", 1)[0]
    return first.rsplit(" b/", 1)[-1]


async def _git_sections(ctx: CallContext, root: Path, diff: bool, log: bool, log_count: int) -> list[PackedFile]:
    """The diff (staged and unstaged, against HEAD) and the log of the repository holding ``root``, through the
    one git runner (the repository's config cannot run programs)."""
    if not (diff or log):
        return []
    directory = root if await ctx.run_sync(root.is_dir) else root.parent
    repo = await open_repository(
        ctx.commands, ctx.workspace, ctx.settings.git, relative_display(ctx.workspace, directory), ctx.roots
    )
    has_head = (await repo.run(["rev-parse", "--verify", "--quiet", "HEAD"], check=False, read_only=True)).ok
    sections = []
    if diff:
        against = ["HEAD"] if has_head else ["--cached"]  # before the first commit: what is staged
        shown = await repo.run(["diff", "--no-color", "--no-ext-diff", *against], read_only=True)
        sections.append(PackedFile("git diff", shown.stdout or "(no changes)\n", kind="git_diff"))
    if log:
        text = "(no commits yet)\n"
        if has_head:
            listed = await repo.run(
                ["log", f"--max-count={log_count}", "--no-color", "--date=iso-strict", "--format=%h %ad %an%n    %s"],
                read_only=True,
            )
            text = listed.stdout
        sections.append(PackedFile("git log", text, kind="git_log"))
    return sections


PackId = Annotated[str, Field(min_length=1, max_length=40, description="The pack_id pack_codebase returned.")]


@toolset.tool(read_only=True, title="Read a stored pack")
async def read_packed(
    ctx: CallContext,
    pack_id: PackId,
    start_line: Annotated[int, Field(ge=1)] = 1,
    end_line: Annotated[int | None, Field(ge=1)] = None,
    part: Annotated[int | None, Field(ge=1, description="One part of a pack split by token_budget.")] = None,
) -> ToolResult:
    """Lines of a stored pack (1-based, inclusive; at most 2,000 a call), or one whole part of a split pack."""
    stored = await ctx.run_sync(lambda: _store(ctx).get(pack_id))
    lines = await ctx.run_sync(stored.lines)
    if part is not None:
        parts = stored.meta.get("parts") or []
        if part > len(parts):
            raise ToolError(f"pack {pack_id} has {len(parts) or 'no'} parts" + ("" if parts else " (no token_budget)"))
        start_line, end_line = parts[part - 1]["start_line"], parts[part - 1]["end_line"]
    elif start_line > len(lines):
        raise ToolError(f"pack {pack_id} has {len(lines)} lines; start_line {start_line} is past its end")
    elif end_line is None:
        end_line = min(len(lines), start_line + MAX_READ_LINES - 1)
    if end_line < start_line:
        raise ToolError(f"end_line {end_line} is before start_line {start_line}")
    if part is None and end_line - start_line + 1 > MAX_READ_LINES:
        raise ToolError(
            f"at most {MAX_READ_LINES} lines a call; ask for {start_line}-{start_line + MAX_READ_LINES - 1}"
        )
    end_line = min(end_line, len(lines))
    text = "\n".join(lines[start_line - 1 : end_line]) + "\n"
    info = {"pack_id": pack_id, "start_line": start_line, "end_line": end_line, "total_lines": len(lines)}
    more = f"; more from line {end_line + 1}" if end_line < len(lines) else ""
    return ToolResult(
        content=[Text(f"pack {pack_id}: lines {start_line}-{end_line} of {len(lines)}{more}"), Text(text)],
        structured=info if part is None else {**info, "part": part},
    )


@toolset.tool(read_only=True, title="Search a stored pack")
async def grep_packed(
    ctx: CallContext,
    pack_id: PackId,
    pattern: Annotated[str, Field(min_length=1, max_length=1000, description="A regular expression (ripgrep's).")],
    context: Annotated[int, Field(ge=0, le=20, description="Lines shown around each match.")] = 0,
    ignore_case: bool = False,
    max_matches: Annotated[int, Field(ge=1, le=1000)] = 100,
) -> ToolResult:
    """Lines of a stored pack matching ``pattern``, with their line numbers (for read_packed) and the file each is
    in. The regex syntax is ripgrep's (linear time: no pattern can hang it)."""
    stored = await ctx.run_sync(lambda: _store(ctx).get(pack_id))
    args = [ripgrep(), "--json", "--max-count", str(max_matches), "--context", str(context)]
    args += ["--ignore-case"] if ignore_case else []
    result = await ctx.commands.run(
        [*args, "--regexp", pattern, "--", str(stored.text_path)], timeout_s=60, keep_head=True
    )
    if result.exit_code not in (0, 1):
        raise ToolError(f"the pattern was refused: {result.stderr.strip().splitlines()[-1] if result.stderr else ''}")
    lines = await ctx.run_sync(stored.lines)
    owner = _line_owners(lines, stored.meta.get("style", "xml"))
    matches, context_lines = [], []
    for raw in result.stdout.splitlines():
        event = json.loads(raw)
        if event["type"] not in ("match", "context"):
            continue
        number = event["data"]["line_number"]
        entry = {"line": number, "text": lines[number - 1], "file": owner.get(number)}
        (matches if event["type"] == "match" else context_lines).append(entry)
    truncated = len(matches) >= max_matches
    data = {"pack_id": pack_id, "matches": matches, "context": context_lines, "truncated": truncated}
    shown = sorted(matches + context_lines, key=lambda m: m["line"])
    text = "\n".join(f"{m['line']}{':' if m in matches else '-'} {m['text']}" for m in shown)
    head = f"{len(matches)}{'+' if truncated else ''} matching line(s) in pack {pack_id}"
    return ToolResult(content=[Text(head), Text(text + "\n" if text else "")], structured=data)


def _line_owners(lines: list[str], style: str) -> dict[int, str]:
    """Which packed file each line of the pack belongs to (by the markers the style writes)."""
    owners: dict[int, str] = {}
    current: str | None = None
    for number, line in enumerate(lines, 1):
        if style == "xml" and line.startswith('<file path="'):
            current = line.split('"')[1].replace("&quot;", '"').replace("&lt;", "<").replace("&amp;", "&")
        elif style == "markdown" and line.startswith("## File: "):
            current = line[len("## File: ") :].split(" (lines ")[0]
        elif style == "plain" and line.startswith("File: "):
            current = line[len("File: ") :].split(" (lines ")[0]
        elif style == "xml" and line == "</files>":
            current = None
        if current is not None:
            owners[number] = current
    return owners
