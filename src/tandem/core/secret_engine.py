"""The secret detection every toolset shares: detect-secrets (every plugin, its default filters, ``pragma:
allowlist secret``) over files or the lines a diff adds, in Tandem's worker processes (detect-secrets keeps its
settings in process-wide state), findings masked so that no secret ever leaves in a result."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from tandem.core import text_files, worker_processes
from tandem.core.context import CallContext
from tandem.core.errors import ToolError
from tandem.core.workspace_path import open_in_workspace

BATCH = 8
"""Files per worker task: small, so that every worker process stays busy (one large file can take seconds)."""
SHOWN_LINE = 200
REDACTED = "<redacted>"
Config = dict[str, Any]
"""detect-secrets settings, as a baseline holds them (``plugins_used``, ``filters_used``)."""


def mask(value: str) -> str:
    """What stands in for a secret: its first two characters of a long one (a key's kind), never more."""
    return value[:2] + "*" * 8 if len(value) >= 16 else "*" * 8


def redact(line: str, values: list[str | None]) -> str:
    """``line`` with every occurrence of every secret in ``values`` masked (overlapping ones as one). Wholly
    ``<redacted>`` when a secret is not in the line as written: detect-secrets reads YAML and INI values decoded, so
    the line may hold the secret in an escaped form that no replacement would catch."""
    if any(not value or value not in line for value in values):
        return REDACTED
    found: list[tuple[int, int]] = []
    for value in values:
        at = line.find(value)  # every occurrence, overlapping ones too
        while at >= 0:
            found.append((at, at + len(value)))
            at = line.find(value, at + 1)
    spans: list[list[int]] = []
    for start, end in sorted(found):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    for start, end in reversed(spans):
        line = line[:start] + mask(line[start:end]) + line[end:]
    line = line.strip()
    return line if len(line) <= SHOWN_LINE else line[:SHOWN_LINE] + " [...]"


def _found(secrets: list[Any], lines_of: dict[str, dict[int, str]]) -> list[dict[str, Any]]:
    """detect-secrets' findings as plain data (they cross a process boundary), secrets masked in their lines."""
    by_line: dict[tuple[str, int], list[Any]] = {}
    for secret in secrets:
        by_line.setdefault((secret.filename, secret.line_number), []).append(secret)
    found = []
    for (filename, number), group in sorted(by_line.items()):
        shown = redact(lines_of.get(filename, {}).get(number, ""), [s.secret_value for s in group])
        for secret in group:
            found.append(
                {
                    "path": filename,
                    "line": number,
                    "type": secret.type,
                    "hashed_secret": secret.secret_hash,
                    "redacted": shown,
                }
            )
    return found


@contextlib.contextmanager
def configured(config: Config | None, source: str) -> Iterator[None]:
    """detect-secrets configured with every plugin and its default filters, or with a baseline's settings; a tool
    error naming the baseline when they cannot be applied (a filter whose optional package is not installed)."""
    from detect_secrets.settings import default_settings, get_filters, get_plugins, transient_settings

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(default_settings() if config is None else transient_settings(config))
        get_plugins()
        get_filters()
    except Exception as exc:  # whatever detect-secrets raises while it sets up its plugins and filters
        stack.close()
        raise ToolError(f"{source}: detect-secrets cannot use its plugin and filter settings: {exc!r}") from None
    with stack:
        yield


def _unscannable(root: Path, name: str, max_bytes: int) -> str | None:
    """Why a listed file is not scanned ('binary', too large, unreadable); None when it is scanned."""
    try:
        with os.fdopen(open_in_workspace(root, root / name), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                return f"{size} bytes, over the {max_bytes}-byte limit (max_file_bytes)"
            if b"\x00" in handle.read(text_files.SNIFF_BYTES):
                return "binary"
    except (OSError, ToolError) as exc:
        return f"not read: {exc}"
    return None


def scan_file_batch(
    workspace: str, max_bytes: int, config: Config | None, source: str, files: list[str]
) -> tuple[list[dict[str, Any]], list[str], int]:
    """Scan ``files`` (relative to ``workspace``, which becomes the working directory so that filenames and
    exclusion patterns read as in a baseline): the findings, the files skipped and why, and how many were scanned.
    Runs in a worker process."""
    from detect_secrets.core import scan

    root = Path(workspace)
    readable, skipped = [], []
    for name in files:
        why = _unscannable(root, name, max_bytes)
        if why is None:
            readable.append(name)
        elif why != "binary":
            skipped.append(f"{name}: {why}")
    previous = os.getcwd()
    os.chdir(workspace)
    try:
        with configured(config, source):
            secrets = [secret for name in readable for secret in scan.scan_file(name)]
        lines_of: dict[str, dict[int, str]] = {}
        for name in {s.filename for s in secrets}:
            with open(name, encoding="utf-8", errors="replace") as handle:
                lines_of[name] = dict(enumerate(handle.read().splitlines(), start=1))
        return _found(secrets, lines_of), skipped, len(readable)
    finally:
        os.chdir(previous)


def scan_diff_text(workspace: str, config: Config | None, source: str, diff: str) -> tuple[list[dict[str, Any]], int]:
    """Scan the lines a unified diff adds, at their line numbers in the new file; and how many files it touches.
    Runs in a worker process."""
    from detect_secrets.core import scan
    from unidiff import PatchSet

    previous = os.getcwd()
    os.chdir(workspace)
    try:
        lines_of: dict[str, dict[int, str]] = {}
        for patched in PatchSet.from_string(diff):
            added = lines_of.setdefault(patched.path, {})
            for hunk in patched:
                for line in hunk.target_lines():
                    if line.is_added and line.target_line_no is not None:
                        added[line.target_line_no] = line.value.rstrip("\n")
        with configured(config, source):
            return _found(list(scan.scan_diff(diff)), lines_of), len(lines_of)
    finally:
        os.chdir(previous)


async def scan_files(
    ctx: CallContext, config: Config | None, source: str, files: list[str]
) -> tuple[list[dict[str, Any]], list[str], int]:
    """Scan ``files`` in worker processes: the findings, the files skipped and why, how many were scanned."""
    batches = [files[i : i + BATCH] for i in range(0, len(files), BATCH)]
    workspace, budget = str(ctx.path(".")), ctx.settings.max_file_bytes
    futures: list[Future[tuple[list[dict[str, Any]], list[str], int]]] = [
        worker_processes.submit(scan_file_batch, workspace, budget, config, source, batch) for batch in batches
    ]
    found: list[dict[str, Any]] = []
    skipped: list[str] = []
    scanned = 0
    try:
        for done, future in enumerate(futures, start=1):
            secrets, passed_over, count = await worker_processes.result(future)
            found += secrets
            skipped += passed_over
            scanned += count
            await ctx.report_progress(min(done * BATCH, len(files)), len(files), f"{len(found)} secrets")
    finally:
        for future in futures:
            future.cancel()
    return found, skipped, scanned
