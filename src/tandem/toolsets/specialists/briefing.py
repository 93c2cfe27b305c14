"""What a specialist is given: the question, and workspace files as context, capped, with any file that holds a
secret left out and any line of free text that holds one masked (the brief may go to a hosted model)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from tandem.core import CallContext, ToolError
from tandem.core.secret_engine import scan_files, secret_lines_in_text
from tandem.core.text_files import read_text

MAX_CONTEXT_FILES = 20
FILE_CHARS = 40_000
"""Most characters of one context file in a brief; the rest is cut with a notice."""
TOTAL_CHARS = 160_000
"""Most characters of context in one brief, all files together."""


class ContextFile(BaseModel):
    path: str
    chars: int
    """Characters of the file in the brief."""
    truncated: bool = False


class LeftOut(BaseModel):
    path: str
    reason: str


Where = Literal["question", "context", "persona"]


class Redaction(BaseModel):
    """A line of free text replaced in the brief because it held a secret."""

    where: Where
    line: int
    """The line number in the text as given (1-based)."""
    kinds: list[str]
    """What detect-secrets found there (``AWS Access Key``, ``Secret Keyword``, ...)."""


@dataclass
class Brief:
    """The user message for the specialist, and what went into it."""

    text: str
    files: list[ContextFile] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    redacted: list[Redaction] = field(default_factory=list)


async def redact(ctx: CallContext, where: Where, text: str) -> tuple[str, list[Redaction]]:
    """``text`` with every line that holds a secret (by detect-secrets' defaults) replaced by a notice naming what
    was found, and those lines. The whole line goes, not just the value: detect-secrets reports some secrets by
    their prefix only (``ghp`` of a GitHub token), so replacing the value alone could leave the rest in place."""
    lines = text.splitlines()
    found = await ctx.run_sync(functools.partial(secret_lines_in_text, lines)) if text.strip() else {}
    if not found:
        return text, []
    for number, kinds in found.items():
        lines[number - 1] = f"[line redacted: it held a secret ({', '.join(kinds)})]"
    return "\n".join(lines), [Redaction(where=where, line=n, kinds=k) for n, k in sorted(found.items())]


async def brief(ctx: CallContext, question: str, notes: str = "", paths: list[str] | None = None) -> Brief:
    """The question with ``notes`` (free text) and the named workspace files; a path outside the workspace, a
    missing, binary or oversized file is a ``ToolError`` naming it. A line of the question or the notes that
    holds a secret is replaced by a notice (``redacted``), whichever model the brief goes to: the same rule as a
    context file holding one, which is left out."""
    paths = list(dict.fromkeys(paths or []))
    if len(paths) > MAX_CONTEXT_FILES:
        raise ToolError(f"{len(paths)} context paths given; at most {MAX_CONTEXT_FILES}: name the files that matter")
    read: list[tuple[str, str]] = []
    digests: dict[str, bytes] = {}
    for given in paths:
        path = ctx.path(given)
        shown = ctx.display(path)
        found = await ctx.run_sync(functools.partial(read_text, ctx.workspace, path, ctx.settings.max_file_bytes))
        read.append((shown, found.text))
        digests[shown] = bytes.fromhex(found.sha256)
    result = Brief(text="")
    question, asked = await redact(ctx, "question", question)
    notes, noted = await redact(ctx, "context", notes)
    result.redacted = asked + noted
    secrets, unscanned = await _secret_lines(ctx, digests) if read else ({}, {})
    sections = [f"## Question\n\n{question.strip()}"]
    if notes.strip():
        sections.append(f"## Notes from the asker\n\n{notes.strip()}")
    budget = TOTAL_CHARS
    blocks = []
    for shown, text in read:
        if shown in secrets:
            lines = ", ".join(map(str, secrets[shown][:5]))
            result.left_out.append(LeftOut(path=shown, reason=f"holds a secret (line {lines}); left out of the brief"))
            continue
        if shown in unscanned:
            why = f"not scanned for secrets ({unscanned[shown]}); left out of the brief"
            result.left_out.append(LeftOut(path=shown, reason=why))
            continue
        if budget <= 0:
            result.left_out.append(LeftOut(path=shown, reason=f"over the {TOTAL_CHARS:,}-character context budget"))
            continue
        cap = min(FILE_CHARS, budget)
        part = text[:cap]
        budget -= len(part)
        truncated = len(text) > cap
        notice = f"\n[truncated: {cap:,} of {len(text):,} characters shown]" if truncated else ""
        fence = "`" * max(3, _longest_backtick_run(part) + 1)
        blocks.append(f"### {shown}\n\n{fence}\n{part}\n{fence}{notice}")
        result.files.append(ContextFile(path=shown, chars=len(part), truncated=truncated))
    if blocks:
        sections.append("## Context files\n\n" + "\n\n".join(blocks))
    result.text = "\n\n".join(sections)
    return result


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


async def _secret_lines(ctx: CallContext, digests: dict[str, bytes]) -> tuple[dict[str, list[int]], dict[str, str]]:
    """The lines holding secrets in each file that has any, by detect-secrets' defaults, scanned as read
    (``digests``: name -> digest of the bytes read); and the files the scan could not vouch for, with why (changed
    since they were read, no longer readable)."""
    scan = await scan_files(
        ctx, None, "detect-secrets' defaults", list(digests), digests, hashes=False, every_text=True
    )
    lines: dict[str, list[int]] = {}
    for item in scan.found:
        lines.setdefault(item["path"], []).append(item["line"])
    return lines, scan.unscanned(list(digests))
