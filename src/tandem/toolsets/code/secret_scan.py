"""``scan_secrets``: detect-secrets (every plugin, its default filters, ``pragma: allowlist secret``) over files or
over the lines a git diff adds, with the project's ``.secrets.baseline``; no secret ever leaves in a result.

detect-secrets keeps its settings in process-wide state, so scans run in Tandem's worker processes, one batch at a
time per process. A baseline may name custom plugins or filters (``file://`` Python files, or any path detect-secrets
imports): those would run code from the repository, so only detect-secrets' own plugins and filters are accepted.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from typing import Annotated

from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError, text_files, worker_processes
from tandem.core.file_list import list_files
from tandem.core.git_command import Repository, open_repository, revision
from tandem.core.secret_engine import Config, scan_diff_text, scan_files
from tandem.toolsets.code.toolset import toolset

BASELINE = ".secrets.baseline"
MAX_FILES = 50_000
MAX_DIFF_BYTES = 64 * 1024 * 1024
SHOWN_SKIPPED = 50
_OWN_FILTER = re.compile(
    r"detect_secrets\.filters\.(allowlist|common|heuristic|regex|wordlist|gibberish)\.[a-z][a-z_]*"
)
FILTER_FILES = {
    "detect_secrets.filters.wordlist.should_exclude_secret": "file_name",
    "detect_secrets.filters.gibberish.should_exclude_secret": "model",
}
"""Filters that read a file the baseline names, and the key naming it: that file must be in the workspace."""


class Secret(BaseModel):
    path: str
    line: int
    type: str = Field(description="What detect-secrets saw, e.g. 'AWS Access Key', 'Secret Keyword'.")
    hashed_secret: str = Field(description="SHA-1 of the secret, as in a detect-secrets baseline.")
    is_verified: bool = Field(False, description="Always false: Tandem never sends a secret anywhere to verify it.")
    redacted: str = Field(description="The line with every secret on it masked (or wholly '<redacted>').")


class SecretReport(BaseModel):
    secrets: list[Secret]
    counts: dict[str, int] = Field(description="Secrets per type, all of them (also past max_results).")
    files_scanned: int
    mode: str = Field(description="'files', or the diff scanned: 'staged', 'working' or a revision.")
    baseline: str | None = Field(None, description="The baseline used, if any.")
    suppressed_by_baseline: int = 0
    skipped: list[str] = Field(
        default_factory=list,
        description=f"Files not scanned (over max_file_bytes, unreadable), first {SHOWN_SKIPPED}; binaries are "
        "left out silently.",
    )
    truncated: bool = False

    def summary(self) -> str:
        total = sum(self.counts.values())
        kept = f"; {self.suppressed_by_baseline} suppressed by {self.baseline}" if self.suppressed_by_baseline else ""
        kept += f"; {len(self.skipped)} file(s) skipped" if self.skipped else ""
        if not total:
            return f"no secrets found in {self.files_scanned} file(s){kept}"
        files = len({s.path for s in self.secrets})
        kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        lines = [f"{total} secret(s) in {files} file(s) ({kinds}){kept}"]
        lines += [f"{s.path}:{s.line}: {s.type}: {s.redacted}" for s in self.secrets[:20]]
        return "\n".join(lines)


def read_baseline(ctx: CallContext, name: str, *, required: bool) -> tuple[Config | None, set[tuple[str, str]]]:
    """The scan settings a baseline file records (None: detect-secrets' defaults), and the (path, hashed secret)
    pairs it already knows, read with detect-secrets' own baseline code. Blocking: run it in a thread."""
    from detect_secrets import SecretsCollection
    from detect_secrets.core.baseline import upgrade
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    path = ctx.path(name)
    if not path.exists():
        if required:
            raise ToolError(f"no baseline file {name!r} (detect-secrets scan > {BASELINE} makes one)")
        return None, set()
    try:
        data = json.loads(text_files.read_text(ctx.workspace, path, ctx.settings.max_file_bytes).text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        data = upgrade(data) if "version" in data else data  # an older baseline's format, brought up to date
        known = {(filename, secret.secret_hash) for filename, secret in SecretsCollection.load_from_baseline(data)}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ToolError(f"{name} is not a detect-secrets baseline: {type(exc).__name__}: {exc}") from None
    config = {key: data[key] for key in ("plugins_used", "filters_used") if key in data}
    if not config:
        return None, known
    own = {plugin.__name__ for plugin in get_mapping_from_secret_type_to_class().values()}
    # A baseline that lists filters but no plugins still scans with every plugin (detect-secrets' default).
    config.setdefault("plugins_used", [{"name": plugin} for plugin in sorted(own)])
    plugins, filters = config["plugins_used"], config.get("filters_used", [])
    if not isinstance(plugins, list) or not isinstance(filters, list):
        raise ToolError(f"{name} is not a detect-secrets baseline: plugins_used and filters_used must be lists")
    if not all(isinstance(entry, dict) for entry in [*plugins, *filters]):
        raise ToolError(f"{name} is not a detect-secrets baseline: plugins and filters must be JSON objects")
    custom = [e for e in plugins if "path" in e or e.get("name") not in own]
    custom += [e for e in filters if not _OWN_FILTER.fullmatch(str(e.get("path")))]
    if custom:
        raise ToolError(
            f"{name} names a plugin or filter that is not one of detect-secrets' own ({str(custom[0])[:200]}): a "
            "custom one would run code from the repository, so Tandem refuses it; remove it from the baseline"
        )
    for entry in filters:
        if (key := FILTER_FILES.get(entry["path"])) and entry.get(key):
            entry[key] = str(ctx.path(str(entry[key])))  # the filter reads this file: it must be in the workspace
    return config, known


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


async def scan(
    ctx: CallContext,
    paths: list[str] | None = None,
    diff: str | None = None,
    baseline: str | None = BASELINE,
    max_results: int = 500,
) -> SecretReport:
    config: Config | None = None
    known: set[tuple[str, str]] = set()
    if baseline:
        config, known = await ctx.run_sync(
            functools.partial(read_baseline, ctx, baseline, required=baseline != BASELINE)
        )
    source = baseline or "detect-secrets' defaults"
    skip = {ctx.display(ctx.path(baseline))} if baseline else set()
    if diff is None:
        roots = [ctx.path(p) for p in (paths or ["."])]
        # Hidden files included: .env and its kind are where secrets most often are (.gitignore is still honoured).
        listed, cut = await list_files(ctx.commands, roots, include_hidden=True, max_files=MAX_FILES)
        files = [name for path in listed if (name := ctx.display(path)) not in skip]
        found, skipped, scanned, _ = await scan_files(ctx, config, source, files)
    else:
        cut = False
        repo = await open_repository(ctx.commands, ctx.workspace, ctx.settings.git, ".", ctx.roots)
        if repo.root != ctx.path("."):
            raise ToolError("diff mode scans the repository at the workspace root, and the workspace is inside one")
        text, untracked = await _diff(ctx, repo, diff, repo.paths(paths or []))
        workspace = str(ctx.path("."))
        found, changed = await worker_processes.result(
            worker_processes.submit(scan_diff_text, workspace, config, source, text)
        )
        more, skipped, scanned, _ = await scan_files(ctx, config, source, [n for n in untracked if n not in skip])
        found += more
        scanned += changed
    fresh = [item for item in found if (item["path"], item["hashed_secret"]) not in known]
    counts = Counter(item["type"] for item in fresh)
    return SecretReport(
        secrets=[Secret(**item) for item in fresh[:max_results]],
        counts=dict(counts),
        files_scanned=scanned,
        mode=diff or "files",
        baseline=baseline if config is not None or known else None,
        suppressed_by_baseline=len(found) - len(fresh),
        skipped=skipped[:SHOWN_SKIPPED],
        truncated=cut or len(fresh) > max_results,
    )


@toolset.tool(read_only=True, title="Scan for secrets")
async def scan_secrets(
    ctx: CallContext,
    paths: list[str] | None = None,
    diff: str | None = None,
    baseline: str | None = BASELINE,
    max_results: Annotated[int, Field(ge=1, le=10_000)] = 500,
) -> SecretReport:
    """Find secrets (API keys, tokens, private keys, passwords, high-entropy strings) with detect-secrets.

    Without ``diff`` it scans the files under ``paths`` (default: the whole workspace, hidden files such as ``.env``
    included, ``.gitignore`` respected; binaries and files over the size limit skipped). ``diff`` scans only what a
    change adds: ``"staged"`` (what the next commit records), ``"working"`` (every uncommitted change, new untracked
    files included) or a revision (``"main"``, ``"HEAD~3"``: the work tree against it). Secrets the baseline file
    (``.secrets.baseline``, made by ``detect-secrets scan``; ``null`` for none) already lists are left out and
    counted; a line marked ``# pragma: allowlist secret`` is skipped. Findings give path, line, type and the
    secret's hash; the secret itself is masked, never returned.
    """
    return await scan(ctx, paths, diff, baseline, max_results)


async def scan_for_validation(ctx: CallContext, paths: list[str] | None) -> tuple[int, str, list[str]]:
    """The ``secrets`` step of ``run_all_validations``: how many, a summary, and the first few one line each."""
    report = await scan(ctx, paths)
    lines = [f"{s.path}:{s.line}: {s.type}" for s in report.secrets[:20]]
    return sum(report.counts.values()), report.summary().splitlines()[0], lines
