"""Reaching other repositories: ``git_clone``, ``git_fetch``, ``git_pull``, ``git_push``, only to the URLs that
``[git] remotes`` allows (checked after git's own ``insteadOf`` rewriting), with progress while they run."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError
from tandem.core.commands import OutputCallback
from tandem.core.git_command import (
    Repository,
    base_options,
    plain_name,
    remote_allowed,
    run_git,
)
from tandem.toolsets.git.history import Status, status_of
from tandem.toolsets.git.toolset import repository, toolset

_PROGRESS = re.compile(r"([A-Z][A-Za-z ]+):\s+(\d{1,3})%")


def progress(ctx: CallContext) -> OutputCallback:
    """Turns git's ``--progress`` lines ("Receiving objects:  45% ...") into progress notifications."""

    async def report(stream: str, text: str) -> None:
        found = _PROGRESS.findall(text)
        if stream == "stderr" and found:
            phase, percent = found[-1]
            await ctx.report_progress(float(percent), 100.0, phase)

    return report


def _messages(text: str) -> str:
    """git's output without its progress lines."""
    lines = (line.rsplit("\r", 1)[-1].strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not _PROGRESS.search(line))[-4000:]


async def remote_urls(repo: Repository, remote: str, push: bool) -> list[str]:
    """Every URL git would use for ``remote`` (after ``insteadOf``), each checked against ``[git] remotes``."""
    plain_name(remote, "remote name")
    args = ["remote", "get-url", "--all", *(["--push"] if push else []), remote]
    found = await repo.run(args, check=False, read_only=True)
    if not found.ok:
        raise ToolError(f"no remote named {remote!r} in this repository (git remote add creates one)")
    return [remote_allowed(repo.settings, url) for url in found.stdout.splitlines() if url]


class Transfer(BaseModel):
    action: str
    remote: str
    urls: list[str]
    output: str = Field(description="What git reported (refs updated, ...), without progress lines.")
    status: Status | None = Field(None, description="The repository's status afterwards (pull).")

    def summary(self) -> str:
        text = f"{self.action} {self.remote} ({', '.join(self.urls)}): {self.output or 'done'}"
        if self.status is not None:
            text += "\n" + self.status.summary()
        return text


class Cloned(BaseModel):
    path: str
    url: str
    branch: str | None
    commit: str | None

    def summary(self) -> str:
        at = f" at {self.branch} {(self.commit or '')[:12]}" if self.commit else " (empty repository)"
        return f"cloned {self.url} into {self.path}{at}"


@toolset.tool(title="Git clone", destructive=False, open_world=True)
async def git_clone(
    ctx: CallContext,
    url: str,
    path: str,
    branch: str | None = None,
    depth: Annotated[int | None, Field(ge=1)] = None,
) -> Cloned:
    """Clone the repository at ``url`` (allowed by ``[git] remotes``) into ``path``, a new or empty directory in
    the workspace; ``branch`` checks that branch out, ``depth`` makes a shallow clone."""
    settings = ctx.settings.git
    remote_allowed(settings, url)
    destination = ctx.path(path)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ToolError(f"{path!r} already exists and is not an empty directory")
    args = [*base_options(settings), "clone", "--progress", "--no-recurse-submodules"]
    if branch is not None:
        args.append(f"--branch={plain_name(branch, 'branch')}")
    if depth is not None:
        args.append(f"--depth={depth}")
    await run_git(
        ctx.commands,
        ctx.workspace,
        [*args, "--", url, str(destination)],
        cwd=ctx.path("."),
        timeout_s=settings.network_timeout_s,
        on_output=progress(ctx),
    )
    cloned = await repository(ctx, ctx.display(destination))
    head = await cloned.run(["rev-parse", "--verify", "--quiet", "HEAD"], check=False, read_only=True)
    current = await cloned.run(["symbolic-ref", "--quiet", "--short", "HEAD"], check=False, read_only=True)
    return Cloned(
        path=ctx.display(destination),
        url=url,
        branch=current.stdout.strip() or None,
        commit=head.stdout.strip() or None,
    )


@toolset.tool(title="Git fetch", destructive=False, open_world=True)
async def git_fetch(ctx: CallContext, remote: str = "origin", prune: bool = False, repo: str = ".") -> Transfer:
    """Download new commits and branches from ``remote`` (its URL must be allowed by ``[git] remotes``);
    ``prune`` also removes remote-tracking branches deleted there. The work tree is not touched."""
    repository_ = await repository(ctx, repo)
    urls = await remote_urls(repository_, remote, push=False)
    result = await repository_.run(
        ["fetch", "--progress", *(["--prune"] * prune), *repository_.pack_program(remote, push=False), "--", remote],
        timeout_s=ctx.settings.git.network_timeout_s,
        on_output=progress(ctx),
    )
    return Transfer(action="fetch", remote=remote, urls=urls, output=_messages(result.stderr + result.stdout))


@toolset.tool(title="Git pull", open_world=True)
async def git_pull(
    ctx: CallContext,
    remote: str = "origin",
    branch: str | None = None,
    mode: Literal["ff-only", "merge", "rebase"] = "ff-only",
    repo: str = ".",
) -> Transfer:
    """Fetch from ``remote`` and bring the current branch up to date with ``branch`` there (default: its upstream).

    ``ff-only`` (default) refuses when the histories diverged; ``merge`` records a merge commit; ``rebase`` replays
    local commits on top. A conflict is an error that says which files conflict.
    """
    how = {"ff-only": ["--ff-only"], "merge": ["--no-rebase", "--no-edit"], "rebase": ["--rebase"]}[mode]
    refs = [plain_name(branch, "branch")] if branch is not None else []
    repository_ = await repository(ctx, repo)
    urls = await remote_urls(repository_, remote, push=False)
    result = await repository_.run(
        ["pull", "--progress", *how, *repository_.pack_program(remote, push=False), "--end-of-options", remote, *refs],
        timeout_s=ctx.settings.git.network_timeout_s,
        on_output=progress(ctx),
    )
    return Transfer(
        action="pull",
        remote=remote,
        urls=urls,
        output=_messages(result.stdout + result.stderr),
        status=await status_of(repository_),
    )


@toolset.tool(title="Git push", destructive=False, open_world=True)
async def git_push(
    ctx: CallContext,
    remote: str = "origin",
    branch: str | None = None,
    set_upstream: bool = False,
    force_with_lease: bool = False,
    repo: str = ".",
) -> Transfer:
    """Push ``branch`` (default: the current one) to the branch of the same name on ``remote`` (its push URL must
    be allowed by ``[git] remotes``). ``set_upstream`` makes it the branch's upstream; ``force_with_lease``
    overwrites the remote branch only if it is where this repository last saw it. Tags and deletions are not
    pushed."""
    if branch is not None:
        plain_name(branch, "branch")
    repository_ = await repository(ctx, repo)
    if branch is None:
        current = await repository_.run(["symbolic-ref", "--quiet", "--short", "HEAD"], check=False, read_only=True)
        if not current.ok:
            raise ToolError("HEAD is detached: name the branch to push")
        branch = current.stdout.strip()
    plain_name(branch, "branch")
    urls = await remote_urls(repository_, remote, push=True)
    args = ["push", "--progress", "--porcelain", *(["--set-upstream"] * set_upstream)]
    args += repository_.pack_program(remote, push=True)
    args += ["--force-with-lease"] * force_with_lease
    result = await repository_.run(
        [*args, "--end-of-options", remote, f"refs/heads/{branch}:refs/heads/{branch}"],
        timeout_s=ctx.settings.git.network_timeout_s,
        on_output=progress(ctx),
    )
    return Transfer(action="push", remote=remote, urls=urls, output=_messages(result.stdout + result.stderr))
