"""Changing the repository: ``git_branch``, ``git_add``, ``git_commit``, ``git_stash``, ``git_restore``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError
from tandem.core.git_command import Repository, failure_message, plain_name, revision
from tandem.toolsets.git.history import _FIELD, Commit, FileDiff, Status, commit_of, files_of, status_of
from tandem.toolsets.git.toolset import repository, toolset

Paths = Annotated[list[str], Field(min_length=1, description="Files or directories, relative to the workspace root.")]


class Branch(BaseModel):
    name: str
    commit: str
    current: bool
    upstream: str | None = None
    subject: str = Field("", description="The subject of the branch's last commit.")


class Branches(BaseModel):
    action: str
    current: str | None = Field(description="The branch checked out after the action; None when HEAD is detached.")
    branches: list[Branch]

    def summary(self) -> str:
        done = {
            "list": f"{len(self.branches)} branch(es)",
            "create": "branch created",
            "switch": f"switched to {self.current}",
        }[self.action]
        lines = [done + (f"; on {self.current}" if self.action != "switch" and self.current else "")]
        lines += [
            f"{'*' if b.current else ' '} {b.name} {b.commit[:12]}" + (f" [{b.upstream}]" if b.upstream else "")
            for b in self.branches[:50]
        ]
        return "\n".join(lines)


async def branches_of(repo: Repository, remotes: bool) -> Branches:
    fields = ("%(HEAD)", "%(refname:short)", "%(objectname)", "%(upstream:short)", "%(contents:subject)")
    refs = ["refs/heads/", *(["refs/remotes/"] if remotes else [])]
    result = await repo.run(["for-each-ref", f"--format={'%1f'.join(fields)}", *refs], read_only=True)
    branches = []
    for line in result.stdout.splitlines():
        head, ref, commit, upstream, subject = line.split(_FIELD, 4)
        branches.append(
            Branch(name=ref, commit=commit, current=head == "*", upstream=upstream or None, subject=subject)
        )
    current = next((b.name for b in branches if b.current), None)
    return Branches(action="list", current=current, branches=branches)


async def _valid_branch(repo: Repository, branch: str) -> str:
    plain_name(branch, "branch name")
    checked = await repo.run(["check-ref-format", "--branch", branch], check=False, read_only=True)
    if not checked.ok:
        raise ToolError(f"{branch!r} is not a valid branch name")
    return branch


@toolset.tool(title="Git branches")
async def git_branch(
    ctx: CallContext,
    action: Literal["list", "create", "switch"] = "list",
    name: str | None = None,
    start_point: str | None = None,
    create: bool = False,
    remotes: bool = False,
    repo: str = ".",
) -> Branches:
    """List, create or switch branches.

    ``list`` (with ``remotes=true`` also remote-tracking branches); ``create`` makes ``name`` at ``start_point``
    (default HEAD) without switching; ``switch`` checks ``name`` out (``create=true`` makes it first), and git
    refuses when uncommitted changes would be lost.
    """
    repository_ = await repository(ctx, repo)
    if action == "list":
        return await branches_of(repository_, remotes)
    if name is None:
        raise ToolError(f"'{action}' needs a branch name")
    branch = await _valid_branch(repository_, name)
    start = [revision(start_point, "start point")] if start_point is not None else []
    if action == "create":
        await repository_.run(["branch", "--end-of-options", branch, *start])
    elif create:
        await repository_.run(["switch", f"--create={branch}", "--end-of-options", *start])
    else:
        if start:
            raise ToolError("start_point is only used when a branch is created (create=true)")
        await repository_.run(["switch", "--end-of-options", branch])
    listed = await branches_of(repository_, remotes)
    return listed.model_copy(update={"action": action})


@toolset.tool(title="Git add", idempotent=True, destructive=False)
async def git_add(ctx: CallContext, paths: Paths, repo: str = ".") -> Status:
    """Stage files (new, changed or deleted) for the next commit; answers the status afterwards.

    Paths must lie in the workspace and the repository; ``["."]`` stages everything under the repository root.
    """
    repository_ = await repository(ctx, repo)
    await repository_.run(["add", "--", *repository_.paths(paths)])
    return await status_of(repository_)


class Committed(BaseModel):
    commit: Commit
    files: list[FileDiff]

    def summary(self) -> str:
        added, removed = sum(f.added or 0 for f in self.files), sum(f.removed or 0 for f in self.files)
        c = self.commit
        return f"committed {c.short}: {c.subject}\n{len(self.files)} file(s) changed, +{added} -{removed}"


@toolset.tool(title="Git commit", destructive=False)
async def git_commit(
    ctx: CallContext,
    message: Annotated[str, Field(min_length=1, max_length=100_000)],
    all: bool = False,
    amend: bool = False,
    allow_empty: bool = False,
    repo: str = ".",
) -> Committed:
    """Record the staged changes as a commit with ``message`` (first line: the subject).

    ``all=true`` stages changes to tracked files first (like ``git commit -a``); ``amend=true`` replaces the last
    commit; ``allow_empty`` records a commit with no changes. The repository's hooks run only when ``[git] hooks``
    allows them.
    """
    if not message.strip():
        raise ToolError("the commit message is empty")
    repository_ = await repository(ctx, repo)
    args = ["commit", "--file=-", "--cleanup=whitespace", "--no-edit"]
    args += ["--all"] * all + ["--amend"] * amend + ["--allow-empty"] * allow_empty
    result = await repository_.run(args, stdin=message, check=False)
    if not result.ok:
        text = (result.stdout + result.stderr).strip()
        if "nothing to commit" in text or "no changes added to commit" in text:
            raise ToolError("nothing to commit: stage changes with git_add first (or pass all=true)")
        raise ToolError(failure_message(args, result))
    commit = await commit_of(repository_, "HEAD")
    return Committed(commit=commit, files=await files_of(repository_, commit.sha))


class StashEntry(BaseModel):
    index: int
    commit: str
    message: str


class Stashes(BaseModel):
    action: str
    output: str = Field("", description="What git said.")
    entries: list[StashEntry]

    def summary(self) -> str:
        lines = [f"stash {self.action}: {self.output.strip() or 'done'}" if self.action != "list" else ""]
        lines += [f"stash@{{{e.index}}} {e.message}" for e in self.entries]
        return "\n".join(line for line in lines if line) or "no stashes"


@toolset.tool(title="Git stash")
async def git_stash(
    ctx: CallContext,
    action: Literal["push", "pop", "apply", "drop", "list"] = "push",
    message: str | None = None,
    include_untracked: bool = False,
    index: Annotated[int, Field(ge=0)] = 0,
    repo: str = ".",
) -> Stashes:
    """Set uncommitted changes aside and bring them back.

    ``push`` saves and clears the changes (with ``message``; ``include_untracked`` takes new files too); ``pop``
    re-applies stash ``index`` (0 is the newest) and drops it, ``apply`` keeps it, ``drop`` deletes it; ``list``
    shows them all.
    """
    repository_ = await repository(ctx, repo)
    output = ""
    if action == "push":
        args = ["stash", "push"] + [f"--message={message}"] * (message is not None)
        result = await repository_.run(args + ["--include-untracked"] * include_untracked, literal_pathspecs=False)
        output = result.stdout
        if "No local changes to save" in output:
            raise ToolError("nothing to stash: there are no uncommitted changes")
    elif action != "list":
        result = await repository_.run(["stash", action, f"stash@{{{index}}}"])
        output = result.stdout + result.stderr
    listed = await repository_.run(["stash", "list", f"--format=%H{_FIELD}%gs"], read_only=True)
    entries = [
        StashEntry(index=i, commit=commit, message=text)
        for i, (commit, text) in enumerate(line.split(_FIELD, 1) for line in listed.stdout.splitlines())
    ]
    return Stashes(action=action, output=output.strip()[-2000:], entries=entries)


@toolset.tool(title="Git restore")
async def git_restore(
    ctx: CallContext,
    paths: Paths,
    staged: bool = False,
    worktree: bool | None = None,
    source: str | None = None,
    repo: str = ".",
) -> Status:
    """Discard changes to files, or unstage them; answers the status afterwards.

    By default the work tree's copy is restored from the index (uncommitted edits are lost); ``staged=true``
    unstages instead (the work tree keeps its edits) unless ``worktree=true`` is given too; ``source`` restores
    from a revision (``HEAD``, ``main~2``) rather than the index.
    """
    args = ["restore"]
    if source is not None:
        args.append(f"--source={revision(source, 'source')}")
    if staged:
        args.append("--staged")
    if worktree or (worktree is None and not staged):
        args.append("--worktree")
    if "--staged" not in args and "--worktree" not in args:
        raise ToolError("nothing to restore: staged=false and worktree=false")
    repository_ = await repository(ctx, repo)
    await repository_.run([*args, "--", *repository_.paths(paths)])
    return await status_of(repository_)
