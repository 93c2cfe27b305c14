"""``scan_secrets``: detect-secrets (every plugin, its default filters, ``pragma: allowlist secret``) over files or
over the lines a git diff adds, with the project's ``.secrets.baseline``; no secret ever leaves in a result.

detect-secrets keeps its settings in process-wide state, so scans run in Tandem's worker processes, one batch at a
time per process. A baseline may name custom plugins or filters as ``file://`` Python files: those would run code
from the repository, and are refused.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from concurrent.futures import Future
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError, worker_processes
from tandem.core.file_list import list_files
from tandem.core.git_command import Repository, open_repository, revision
from tandem.toolsets.code.toolset import toolset

BASELINE = ".secrets.baseline"
BATCH = 8
"""Files per worker task: small, so that every worker process stays busy (one large file can take seconds)."""
MAX_FILES = 50_000
MAX_DIFF_BYTES = 64 * 1024 * 1024
SHOWN_LINE = 200


class Secret(BaseModel):
    path: str
    line: int
    type: str = Field(description="What detect-secrets saw, e.g. 'AWS Access Key', 'Secret Keyword'.")
    hashed_secret: str = Field(description="SHA-1 of the secret, as in a detect-secrets baseline.")
    redacted: str = Field(description="The line with every secret on it masked.")


class SecretReport(BaseModel):
    secrets: list[Secret]
    counts: dict[str, int] = Field(description="Secrets per type, all of them (also past max_results).")
    files_scanned: int
    mode: str = Field(description="'files', or the diff scanned: 'staged', 'working' or a revision.")
    baseline: str | None = Field(None, description="The baseline used, if any.")
    suppressed_by_baseline: int = 0
    truncated: bool = False

    def summary(self) -> str:
        total = sum(self.counts.values())
        kept = f"; {self.suppressed_by_baseline} known in {self.baseline}" if self.suppressed_by_baseline else ""
        if not total:
            return f"no secrets found in {self.files_scanned} file(s){kept}"
        files = len({s.path for s in self.secrets})
        kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        lines = [f"{total} secret(s) in {files} file(s) ({kinds}){kept}"]
        lines += [f"{s.path}:{s.line}: {s.type}: {s.redacted}" for s in self.secrets[:20]]
        return "\n".join(lines)


def mask(value: str) -> str:
    """What stands in for a secret: its first two characters of a long one (a key's kind), never more."""
    return value[:2] + "*" * 8 if len(value) >= 16 else "*" * 8


def redact(line: str, values: list[str]) -> str:
    for value in sorted((v for v in values if v), key=len, reverse=True):
        line = line.replace(value, mask(value))
    line = line.strip()
    return line if len(line) <= SHOWN_LINE else line[:SHOWN_LINE] + " [...]"


def _found(secrets: list[Any], lines_of: dict[str, dict[int, str]]) -> list[dict[str, Any]]:
    """detect-secrets' findings as plain data (they cross a process boundary), secrets masked in their lines."""
    by_line: dict[tuple[str, int], list[Any]] = {}
    for secret in secrets:
        by_line.setdefault((secret.filename, secret.line_number), []).append(secret)
    found = []
    for (filename, number), group in sorted(by_line.items()):
        line = lines_of.get(filename, {}).get(number, "")
        shown = redact(line, [s.secret_value for s in group if s.secret_value])
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


def _settings(config: dict[str, Any] | None) -> Any:
    from detect_secrets.settings import default_settings, transient_settings

    return default_settings() if config is None else transient_settings(config)


def scan_file_batch(workspace: str, config: dict[str, Any] | None, files: list[str]) -> list[dict[str, Any]]:
    """Scan ``files`` (relative to ``workspace``, which becomes the working directory so that filenames and
    exclusion patterns read as in a baseline). Runs in a worker process."""
    from detect_secrets.core import scan

    previous = os.getcwd()
    os.chdir(workspace)
    try:
        with _settings(config):
            secrets = [secret for name in files for secret in scan.scan_file(name)]
            lines_of: dict[str, dict[int, str]] = {}
            for name in {s.filename for s in secrets}:
                with open(name, encoding="utf-8", errors="replace") as handle:
                    lines_of[name] = dict(enumerate(handle.read().splitlines(), start=1))
            return _found(secrets, lines_of)
    finally:
        os.chdir(previous)


def scan_diff_text(workspace: str, config: dict[str, Any] | None, diff: str) -> tuple[list[dict[str, Any]], int]:
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
        with _settings(config):
            return _found(list(scan.scan_diff(diff)), lines_of), len(lines_of)
    finally:
        os.chdir(previous)


def load_baseline(ctx: CallContext, name: str, *, required: bool) -> tuple[dict[str, Any] | None, set[tuple[str, str]]]:
    """The scan settings a baseline file records, and the (path, hashed secret) pairs it already knows."""
    path = ctx.path(name)
    if not path.exists():
        if required:
            raise ToolError(f"no baseline file {name!r} (detect-secrets scan > {BASELINE} makes one)")
        return None, set()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        results = data.get("results", {})
        known = {(f, item["hashed_secret"]) for f, items in results.items() for item in items}
        config = {k: data[k] for k in ("plugins_used", "filters_used") if k in data}
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
        raise ToolError(f"{name} is not a detect-secrets baseline: {exc}") from None
    for entry in [*config.get("plugins_used", []), *config.get("filters_used", [])]:
        if not isinstance(entry, dict) or str(entry.get("path", "")).startswith("file:"):
            raise ToolError(
                f"{name} names a custom plugin or filter file ({str(entry)[:200]}): that would run code from the "
                "repository, so Tandem refuses it; remove it from the baseline"
            )
    return (config or None), known


async def _diff(ctx: CallContext, repo: Repository, mode: str, paths: list[str]) -> tuple[str, list[str]]:
    """The diff to scan and the untracked files to scan whole (``working`` mode)."""
    common = ["diff", "--no-ext-diff", "--no-textconv", "--no-color", "--unified=0", "--no-renames"]
    if mode == "staged":
        args = [*common, "--cached"]
    elif mode == "working":
        has_head = await repo.run(["rev-parse", "--verify", "--quiet", "HEAD"], check=False, read_only=True)
        args = [*common, "HEAD"] if has_head.ok else [*common, "--cached"]
    else:
        found = await repo.run(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision(mode)}^{{commit}}"],
            check=False,
            read_only=True,
        )
        if not found.ok:
            raise ToolError(f"no commit {mode!r} in this repository")
        args = [*common, "--end-of-options", found.stdout.strip()]
    result = await repo.run([*args, "--", *paths], read_only=True, max_output_bytes=MAX_DIFF_BYTES)
    if result.stdout_bytes > MAX_DIFF_BYTES:
        raise ToolError(f"the diff is larger than {MAX_DIFF_BYTES // 1024 // 1024} MB; scan paths instead")
    untracked: list[str] = []
    if mode == "working":
        listed = await repo.run(
            ["ls-files", "--others", "--exclude-standard", "-z", "--", *paths],
            read_only=True,
            max_output_bytes=MAX_DIFF_BYTES,
        )
        untracked = [repo.shown(name) for name in listed.stdout.split("\x00") if name]
    return result.stdout, untracked


async def _scan_files(ctx: CallContext, config: dict[str, Any] | None, files: list[str]) -> list[dict[str, Any]]:
    batches = [files[i : i + BATCH] for i in range(0, len(files), BATCH)]
    workspace = str(ctx.path("."))
    futures: list[Future[list[dict[str, Any]]]] = [
        worker_processes.submit(scan_file_batch, workspace, config, batch) for batch in batches
    ]
    found: list[dict[str, Any]] = []
    try:
        for done, future in enumerate(futures, start=1):
            found += await worker_processes.result(future)
            await ctx.report_progress(min(done * BATCH, len(files)), len(files), f"{len(found)} secrets")
    finally:
        for future in futures:
            future.cancel()
    return found


async def scan(
    ctx: CallContext,
    paths: list[str] | None = None,
    diff: str | None = None,
    baseline: str | None = BASELINE,
    max_results: int = 500,
) -> SecretReport:
    config, known = load_baseline(ctx, baseline, required=baseline != BASELINE) if baseline else (None, set())
    skip = {ctx.display(ctx.path(baseline))} if baseline else set()
    if diff is None:
        roots = [ctx.path(p) for p in (paths or ["."])]
        listed, cut = await list_files(ctx.commands, roots, max_files=MAX_FILES)
        files = [name for path in listed if (name := ctx.display(path)) not in skip and not _binary(path)]
        found = await _scan_files(ctx, config, files)
        scanned = len(files)
    else:
        cut = False
        repo = await open_repository(ctx.commands, ctx.workspace, ctx.settings.git, ".", ctx.roots)
        if repo.root != ctx.path("."):
            raise ToolError("diff mode scans the repository at the workspace root, and the workspace is inside one")
        text, untracked = await _diff(ctx, repo, diff, repo.paths(paths or []))
        workspace = str(ctx.path("."))
        found, changed = await worker_processes.result(worker_processes.submit(scan_diff_text, workspace, config, text))
        untracked = [name for name in untracked if name not in skip and not _binary(ctx.path(name))]
        found += await _scan_files(ctx, config, untracked)
        scanned = changed + len(untracked)
    fresh = [item for item in found if (item["path"], item["hashed_secret"]) not in known]
    counts = Counter(item["type"] for item in fresh)
    return SecretReport(
        secrets=[Secret(**item) for item in fresh[:max_results]],
        counts=dict(counts),
        files_scanned=scanned,
        mode=diff or "files",
        baseline=baseline if config is not None or known else None,
        suppressed_by_baseline=len(found) - len(fresh),
        truncated=cut or len(fresh) > max_results,
    )


def _binary(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return b"\x00" in handle.read(8192)
    except OSError:
        return True


@toolset.tool(read_only=True, title="Scan for secrets")
async def scan_secrets(
    ctx: CallContext,
    paths: list[str] | None = None,
    diff: str | None = None,
    baseline: str | None = BASELINE,
    max_results: Annotated[int, Field(ge=1, le=10_000)] = 500,
) -> SecretReport:
    """Find secrets (API keys, tokens, private keys, passwords, high-entropy strings) with detect-secrets.

    Without ``diff`` it scans the files under ``paths`` (default: the whole workspace, ``.gitignore`` respected,
    binaries skipped). ``diff`` scans only what a change adds: ``"staged"`` (what the next commit records),
    ``"working"`` (every uncommitted change, new untracked files included) or a revision (``"main"``, ``"HEAD~3"``:
    the work tree against it). Secrets the baseline file (``.secrets.baseline``, made by ``detect-secrets scan``)
    already lists are left out and counted; a line marked ``# pragma: allowlist secret`` is skipped. Findings give
    path, line, type and the secret's hash; the secret itself is masked, never returned.
    """
    return await scan(ctx, paths, diff, baseline, max_results)


async def scan_for_validation(ctx: CallContext, paths: list[str] | None) -> tuple[int, str, list[str]]:
    """The ``secrets`` step of ``run_all_validations``: how many, a summary, and the first few one line each."""
    report = await scan(ctx, paths)
    lines = [f"{s.path}:{s.line}: {s.type}" for s in report.secrets[:20]]
    return sum(report.counts.values()), report.summary().splitlines()[0], lines
