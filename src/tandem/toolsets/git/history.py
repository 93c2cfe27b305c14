"""Reading the repository: ``git_status``, ``git_diff``, ``git_log``, ``git_show``. None of them changes anything
(``GIT_OPTIONAL_LOCKS=0``: not even the index's stat cache)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError
from tandem.core.git_command import Repository, revision, revision_range
from tandem.toolsets.git.toolset import cut, repository, toolset

MAX_ENTRIES = 1000
"""Status entries listed; the counts cover all of them."""
STATES = {
    "M": "modified", "T": "type changed", "A": "added", "D": "deleted", "R": "renamed", "C": "copied",
    "U": "unmerged", "?": "untracked", "!": "ignored",
}  # fmt: skip
_SINCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 :.,+/-]{0,63}")
_FIELD, _RECORD = "\x1f", "\x1e"
_LOG_FORMAT = _FIELD.join(("%H", "%h", "%P", "%an", "%ae", "%aI", "%s", "%b")) + _RECORD
_SHOW_DIFF = ("--no-ext-diff", "--no-textconv", "--no-color", "--find-renames")


class StatusEntry(BaseModel):
    path: str = Field(description="Relative to the workspace root.")
    staged: str | None = Field(None, description="The change in the index (modified, added, deleted, renamed, ...).")
    unstaged: str | None = Field(None, description="The change in the work tree not yet staged.")
    original_path: str | None = Field(None, description="For a rename or copy: where it came from.")


class Status(BaseModel):
    branch: str | None = Field(description="The current branch; None when HEAD is detached.")
    commit: str | None = Field(description="The commit HEAD names; None before the first commit.")
    upstream: str | None = None
    ahead: int = 0
    behind: int = 0
    staged: int = 0
    unstaged: int = 0
    untracked: int = 0
    conflicted: int = 0
    entries: list[StatusEntry] = Field(description=f"Up to {MAX_ENTRIES} changed paths.")
    truncated: bool = False

    def summary(self) -> str:
        where = f"on {self.branch}" if self.branch else f"HEAD detached at {(self.commit or '')[:12]}"
        if self.upstream:
            where += f" (tracking {self.upstream}" + (
                f", ahead {self.ahead}, behind {self.behind})" if self.ahead or self.behind else ", up to date)"
            )
        counts = [
            f"{n} {label}"
            for n, label in (
                (self.conflicted, "conflicted"),
                (self.staged, "staged"),
                (self.unstaged, "changed, not staged"),
                (self.untracked, "untracked"),
            )
            if n
        ]
        lines = [f"{where}: " + (", ".join(counts) if counts else "clean")]
        for entry in self.entries[:30]:
            states = "/".join(s for s in (entry.staged, entry.unstaged) if s)
            moved = f" (from {entry.original_path})" if entry.original_path else ""
            lines.append(f"  {states}: {entry.path}{moved}")
        if len(self.entries) > 30:
            lines.append(f"  ... and {len(self.entries) - 30} more")
        return "\n".join(lines)


def _state(letter: str) -> str | None:
    return None if letter == "." else STATES.get(letter, letter)


def parse_status(repo: Repository, text: str) -> Status:
    """``git status --porcelain=v2 --branch -z``."""
    status = Status(branch=None, commit=None, entries=[])
    tokens = iter(text.split("\x00"))
    for token in tokens:
        if token.startswith("# "):
            key, _, value = token[2:].partition(" ")
            if key == "branch.oid":
                status.commit = None if value == "(initial)" else value
            elif key == "branch.head":
                status.branch = None if value == "(detached)" else value
            elif key == "branch.upstream":
                status.upstream = value
            elif key == "branch.ab":
                ahead, behind = value.split()
                status.ahead, status.behind = int(ahead), abs(int(behind))
            continue
        kind = token[:1]
        if kind in ("1", "2"):
            parts = token.split(" ", 8 if kind == "1" else 9)
            xy, path = parts[1], parts[-1]
            original = next(tokens) if kind == "2" else None
            entry = StatusEntry(
                path=repo.shown(path),
                staged=_state(xy[0]),
                unstaged=_state(xy[1]),
                original_path=repo.shown(original) if original else None,
            )
            status.staged += entry.staged is not None
            status.unstaged += entry.unstaged is not None
        elif kind == "u":
            entry = StatusEntry(path=repo.shown(token.split(" ", 10)[-1]), staged="unmerged", unstaged="unmerged")
            status.conflicted += 1
        elif kind == "?":
            entry = StatusEntry(path=repo.shown(token[2:]), unstaged="untracked")
            status.untracked += 1
        else:
            continue
        if len(status.entries) < MAX_ENTRIES:
            status.entries.append(entry)
        else:
            status.truncated = True
    return status


@toolset.tool(read_only=True, title="Git status")
async def git_status(ctx: CallContext, repo: str = ".") -> Status:
    """The current branch, its upstream (ahead / behind), and every staged, unstaged, untracked and conflicted path.

    ``repo`` is a directory in the repository (default: the workspace root); repositories are only looked for
    inside the workspace.
    """
    return await status_of(await repository(ctx, repo), read_only=True)


async def status_of(repo: Repository, *, read_only: bool = False) -> Status:
    """The repository's status; ``read_only`` leaves the index's stat cache as it is (after a change, refreshing it
    is the point)."""
    result = await repo.run(
        ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal"],
        read_only=read_only,
        max_output_bytes=16 * 1024 * 1024,
    )
    return parse_status(repo, result.stdout)


class FileDiff(BaseModel):
    path: str
    original_path: str | None = Field(None, description="For a rename: the old path.")
    added: int | None = Field(description="Lines added; None for a binary file.")
    removed: int | None = Field(description="Lines removed; None for a binary file.")


class Diff(BaseModel):
    files: list[FileDiff]
    added: int
    removed: int
    diff: str = Field(description="The unified diff (cut at a limit, see 'truncated').")
    truncated: bool = False

    def summary(self) -> str:
        if not self.files:
            return "no differences"
        head = f"{len(self.files)} file(s) changed, +{self.added} -{self.removed}"
        return head + ("\n" + self.diff if self.diff else "")


def parse_numstat(repo: Repository, text: str) -> list[FileDiff]:
    """``--numstat -z``: ``added TAB removed TAB path NUL``, or for a rename ``added TAB removed TAB NUL old NUL new
    NUL``; ``-`` counts for a binary file."""
    files = []
    tokens = iter(text.split("\x00"))
    for token in tokens:
        if not token:
            continue
        added, removed, path = token.split("\t", 2)
        original = None
        if not path:
            original, path = next(tokens), next(tokens)
        files.append(
            FileDiff(
                path=repo.shown(path),
                original_path=repo.shown(original) if original else None,
                added=None if added == "-" else int(added),
                removed=None if removed == "-" else int(removed),
            )
        )
    return files


async def diff_of(repo: Repository, args: list[str], paths: list[str], context_lines: int) -> Diff:
    common = ["--no-ext-diff", "--no-textconv", "--no-color", "--find-renames", *args, "--", *paths]
    stat = await repo.run(["diff", "--numstat", "-z", *common], read_only=True, max_output_bytes=16 * 1024 * 1024)
    patch = await repo.run(
        ["diff", f"--unified={context_lines}", *common], read_only=True, max_output_bytes=4 * 1024 * 1024
    )
    files = parse_numstat(repo, stat.stdout)
    text, truncated = cut(patch.stdout)
    return Diff(
        files=files,
        added=sum(f.added or 0 for f in files),
        removed=sum(f.removed or 0 for f in files),
        diff=text,
        truncated=truncated or patch.stdout_bytes > len(patch.stdout.encode()),
    )


@toolset.tool(read_only=True, title="Git diff")
async def git_diff(
    ctx: CallContext,
    staged: bool = False,
    target: str | None = None,
    paths: list[str] | None = None,
    context_lines: Annotated[int, Field(ge=0, le=100)] = 3,
    repo: str = ".",
) -> Diff:
    """A unified diff and per-file line counts.

    By default the work tree against the index (changes not yet staged); ``staged=true``: the index against HEAD
    (what a commit would record); ``target``: the work tree against a revision (``HEAD~1``, ``main``), or a range
    ``A..B`` / ``A...B`` between commits. ``paths`` limits it to those files or directories.
    """
    args = ["--cached"] if staged else []
    if target is not None:
        args += ["--end-of-options", revision_range(target)]
    repository_ = await repository(ctx, repo)
    return await diff_of(repository_, args, repository_.paths(paths or []), context_lines)


class Commit(BaseModel):
    sha: str
    short: str
    parents: list[str]
    author: str
    email: str
    date: str = Field(description="Author date, ISO 8601.")
    subject: str
    body: str = ""


class Log(BaseModel):
    commits: list[Commit]

    def summary(self) -> str:
        if not self.commits:
            return "no commits"
        return "\n".join(f"{c.short} {c.date[:10]} {c.author}: {c.subject}" for c in self.commits)


def parse_log(text: str) -> list[Commit]:
    commits = []
    for record in text.split(_RECORD):
        record = record.lstrip("\n")
        if not record:
            continue
        sha, short, parents, author, email, date, subject, body = record.split(_FIELD, 7)
        commits.append(
            Commit(
                sha=sha,
                short=short,
                parents=parents.split(),
                author=author,
                email=email,
                date=date,
                subject=subject,
                body=body.strip(),
            )
        )
    return commits


@toolset.tool(read_only=True, title="Git log")
async def git_log(
    ctx: CallContext,
    max_count: Annotated[int, Field(ge=1, le=1000)] = 20,
    path: str | None = None,
    since: str | None = None,
    rev: str | None = None,
    repo: str = ".",
) -> Log:
    """Commits, newest first: sha, parents, author, ISO date, subject and body.

    ``path`` keeps commits that touched it; ``since`` is a date git understands ("2 weeks ago", "2026-01-31");
    ``rev`` is where to start (default HEAD) or a range such as ``main..feature``.
    """
    args = ["log", f"--max-count={max_count}", f"--format={_LOG_FORMAT}", "--no-show-signature"]
    if since is not None:
        if not _SINCE.fullmatch(since):
            raise ToolError(f"invalid since {since[:100]!r}: give a date such as '2026-01-31' or '2 weeks ago'")
        args.append(f"--since={since}")
    if rev is not None:
        args += ["--end-of-options", revision_range(rev)]
    repository_ = await repository(ctx, repo)
    paths = repository_.paths([path]) if path is not None else []
    empty = await repository_.run(["rev-parse", "--verify", "--quiet", "HEAD"], check=False, read_only=True)
    if rev is None and not empty.ok:
        return Log(commits=[])
    result = await repository_.run([*args, "--", *paths], read_only=True, max_output_bytes=16 * 1024 * 1024)
    return Log(commits=parse_log(result.stdout))


class Shown(BaseModel):
    commit: Commit
    files: list[FileDiff] = Field(default_factory=list)
    diff: str = ""
    content: str | None = Field(None, description="With 'path': the file's content at that revision.")
    truncated: bool = False

    def summary(self) -> str:
        c = self.commit
        head = f"{c.short} {c.date[:10]} {c.author}: {c.subject}"
        if self.content is not None:
            return head + "\n" + self.content
        added, removed = sum(f.added or 0 for f in self.files), sum(f.removed or 0 for f in self.files)
        return f"{head}\n{len(self.files)} file(s) changed, +{added} -{removed}\n{self.diff}"


@toolset.tool(read_only=True, title="Git show")
async def git_show(
    ctx: CallContext,
    rev: str = "HEAD",
    path: str | None = None,
    context_lines: Annotated[int, Field(ge=0, le=100)] = 3,
    repo: str = ".",
) -> Shown:
    """A commit: its metadata, files changed and diff; with ``path``, that file's content at the commit instead."""
    revision(rev)
    repository_ = await repository(ctx, repo)
    found = await repository_.run(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], check=False, read_only=True
    )
    if not found.ok:
        raise ToolError(f"no commit {rev!r} in this repository")
    sha = found.stdout.strip()
    commit = await commit_of(repository_, sha)
    if path is not None:
        relative = repository_.paths([path])[0]
        blob = await repository_.run(
            ["cat-file", "blob", f"{sha}:{relative}"], check=False, read_only=True, max_output_bytes=8 * 1024 * 1024
        )
        if not blob.ok:
            raise ToolError(f"{path!r} is not a file in {rev} ({commit.short})")
        if "\x00" in blob.stdout[:8192]:
            raise ToolError(f"{path!r} at {rev} is a binary file ({blob.stdout_bytes} bytes)")
        text, truncated = cut(blob.stdout)
        return Shown(commit=commit, content=text, truncated=truncated or blob.stdout_bytes > len(blob.stdout.encode()))
    patch = await repository_.run(
        ["show", "--format=", f"--unified={context_lines}", *_SHOW_DIFF, sha, "--"], read_only=True
    )
    text, truncated = cut(patch.stdout)
    return Shown(commit=commit, files=await files_of(repository_, sha), diff=text, truncated=truncated)


async def commit_of(repo: Repository, sha: str) -> Commit:
    """One commit's metadata (``sha``: a full commit id or ``HEAD``, never a client's string)."""
    meta = await repo.run(["log", "-1", f"--format={_LOG_FORMAT}", "--no-show-signature", sha], read_only=True)
    return parse_log(meta.stdout)[0]


async def files_of(repo: Repository, sha: str) -> list[FileDiff]:
    """The files one commit changed, with their line counts."""
    stat = await repo.run(["show", "--format=", "--numstat", "-z", *_SHOW_DIFF, sha, "--"], read_only=True)
    return parse_numstat(repo, stat.stdout)
