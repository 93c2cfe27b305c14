"""The git toolset through a real MCP client, on real repositories made in temp dirs (remotes are local bare
repositories), with the attack inputs: option injection, paths out of the workspace, and hostile repository config
that names programs (each proven live by plain git running it first)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tandem.core import ToolError
from tandem.core.git_command import ConfigEntry, GitSettings, overrides_for, parse_config_list
from tests.toolsets.calls import call, git, refused, serving, text

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("git_identity")]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    (root / "app.py").write_text("print('one')\n")
    (root / "README.md").write_text("# Project\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first commit")
    return root


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file a hostile program would create; it must never exist after a Tandem call."""
    return tmp_path / "PWNED"


async def connect(workspace: Path, **git_settings: Any) -> AsyncIterator[Client]:
    async with serving(workspace, toolsets=["git"], git=git_settings) as connected:
        yield connected


@pytest.fixture
async def client(workspace: Path, tmp_path: Path) -> AsyncIterator[Client]:
    async for connected in connect(workspace, remotes=[f"{tmp_path}/remotes/*"]):
        yield connected


async def test_status_add_commit_log_show(client: Client, workspace: Path) -> None:
    (workspace / "app.py").write_text("print('two')\n")
    (workspace / "new.py").write_text("x = 1\n")
    git(workspace, "mv", "README.md", "GUIDE.md")
    status = await call(client, "git_status")
    assert status["branch"] == "main" and len(status["commit"]) == 40
    entries = {e["path"]: e for e in status["entries"]}
    assert entries["app.py"]["unstaged"] == "modified" and entries["app.py"]["staged"] is None
    assert entries["new.py"]["unstaged"] == "untracked"
    assert entries["GUIDE.md"]["staged"] == "renamed" and entries["GUIDE.md"]["original_path"] == "README.md"
    assert (status["staged"], status["unstaged"], status["untracked"]) == (1, 1, 1)
    summary = await text(client, "git_status")
    assert summary.startswith("on main: 1 staged, 1 changed, not staged, 1 untracked")

    staged = await call(client, "git_add", paths=["app.py", "new.py"])
    assert staged["staged"] == 3 and staged["untracked"] == 0
    diff = await call(client, "git_diff", staged=True)
    files = {f["path"]: f for f in diff["files"]}
    assert files["app.py"]["added"] == 1 and files["app.py"]["removed"] == 1
    assert files["GUIDE.md"]["original_path"] == "README.md"
    assert "-print('one')\n+print('two')" in diff["diff"]
    assert (await call(client, "git_diff"))["files"] == []  # nothing unstaged is left

    committed = await call(client, "git_commit", message="Second: edit app\n\nWith a body.\n# kept, not a comment")
    assert committed["commit"]["subject"] == "Second: edit app"
    assert "# kept, not a comment" in committed["commit"]["body"]
    assert {f["path"] for f in committed["files"]} == {"app.py", "new.py", "GUIDE.md"}
    assert git(workspace, "log", "-1", "--format=%s").strip() == "Second: edit app"

    log = await call(client, "git_log", max_count=5)
    assert [c["subject"] for c in log["commits"]] == ["Second: edit app", "first commit"]
    assert log["commits"][0]["author"] == "Ada Tester" and log["commits"][0]["parents"] == [log["commits"][1]["sha"]]
    assert [c["subject"] for c in (await call(client, "git_log", path="new.py"))["commits"]] == ["Second: edit app"]
    assert (await call(client, "git_log", since="2000-01-01", rev="HEAD~1..HEAD"))["commits"][0]["subject"] == (
        "Second: edit app"
    )

    shown = await call(client, "git_show", rev="HEAD~1", path="app.py")
    assert shown["content"] == "print('one')\n" and shown["commit"]["subject"] == "first commit"
    commit = await call(client, "git_show")
    assert "+print('two')" in commit["diff"] and len(commit["files"]) == 3
    against = await call(client, "git_diff", target="HEAD~1", paths=["app.py"])
    assert [f["path"] for f in against["files"]] == ["app.py"]
    assert "no commit 'nope'" in await refused(client, "git_show", rev="nope")
    assert "nothing to commit" in await refused(client, "git_commit", message="again")


async def test_an_empty_repository_and_a_missing_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    async for client in connect(empty):
        assert (await call(client, "git_log"))["commits"] == []
        status = await call(client, "git_status")
        assert status["commit"] is None and status["branch"] == "main"
    plain = tmp_path / "plain"
    plain.mkdir()
    async for client in connect(plain):
        assert "not in a git repository" in await refused(client, "git_status")


async def test_branches(client: Client, workspace: Path) -> None:
    created = await call(client, "git_branch", action="create", name="feature/one")
    assert {b["name"] for b in created["branches"]} == {"main", "feature/one"} and created["current"] == "main"
    switched = await call(client, "git_branch", action="switch", name="feature/one")
    assert switched["current"] == "feature/one"
    assert git(workspace, "branch", "--show-current").strip() == "feature/one"
    made = await call(client, "git_branch", action="switch", name="fix", create=True, start_point="main")
    assert made["current"] == "fix"
    listed = await text(client, "git_branch")
    assert listed.startswith("3 branch(es); on fix") and "* fix" in listed
    for bad in ("-D", "--help", "a..b", "x.lock", "a b", "--force", ".hidden"):
        message = await refused(client, "git_branch", action="create", name=bad)
        assert "invalid branch name" in message or "not a valid branch name" in message, (bad, message)
    assert "invalid start point" in await refused(
        client, "git_branch", action="create", name="ok", start_point="--orphan"
    )
    assert "already exists" in await refused(client, "git_branch", action="create", name="fix")
    assert sorted(git(workspace, "branch", "--format=%(refname:short)").split()) == ["feature/one", "fix", "main"]


async def test_stash_and_restore(client: Client, workspace: Path) -> None:
    (workspace / "app.py").write_text("print('draft')\n")
    (workspace / "scratch.txt").write_text("notes\n")
    pushed = await call(client, "git_stash", message="wip draft", include_untracked=True)
    assert [e["message"] for e in pushed["entries"]] == ["On main: wip draft"]
    assert (workspace / "app.py").read_text() == "print('one')\n" and not (workspace / "scratch.txt").exists()
    assert "nothing to stash" in await refused(client, "git_stash")
    popped = await call(client, "git_stash", action="pop")
    assert popped["entries"] == [] and (workspace / "scratch.txt").read_text() == "notes\n"
    assert (workspace / "app.py").read_text() == "print('draft')\n"

    await call(client, "git_add", paths=["app.py"])
    unstaged = await call(client, "git_restore", paths=["app.py"], staged=True)
    assert unstaged["staged"] == 0 and (workspace / "app.py").read_text() == "print('draft')\n"
    restored = await call(client, "git_restore", paths=["app.py"])
    assert (workspace / "app.py").read_text() == "print('one')\n"
    assert [e["path"] for e in restored["entries"]] == ["scratch.txt"]
    (workspace / "app.py").write_text("print('three')\n")
    git(workspace, "commit", "-qam", "three")
    await call(client, "git_restore", paths=["app.py"], source="HEAD~1")
    assert (workspace / "app.py").read_text() == "print('one')\n"
    assert "invalid source" in await refused(client, "git_restore", paths=["app.py"], source="--staged")


async def test_option_injection_is_refused(client: Client, workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "written"
    for tool, arguments in [
        ("git_diff", {"target": f"--output={out}"}),
        ("git_diff", {"target": "HEAD..--output=x"}),
        ("git_log", {"rev": f"--output={out}"}),
        ("git_log", {"since": f"--output={out}"}),
        ("git_show", {"rev": f"--output={out}"}),
        ("git_show", {"rev": "HEAD:app.py"}),
        ("git_branch", {"action": "switch", "name": "--detach"}),
        ("git_fetch", {"remote": "--upload-pack=touch x"}),
        ("git_push", {"branch": "--delete"}),
        ("git_pull", {"remote": "origin", "branch": "-x"}),
    ]:
        message = await refused(client, tool, **arguments)
        assert message.startswith("invalid") or "invalid" in message, (tool, message)
    assert not out.exists() and not (workspace / "x").exists()


async def test_paths_are_confined_and_literal(client: Client, workspace: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("keep out\n")
    for paths in (["../outside.txt"], [str(secret)], ["../../.kube/config"], ["app.py", "../outside.txt"]):
        assert "outside the workspace" in await refused(client, "git_add", paths=paths), paths
    assert git(workspace, "diff", "--cached", "--name-only") == ""
    (workspace / "link").symlink_to(secret)
    await call(client, "git_add", paths=["link"])  # the link itself is staged, not what it points at
    assert git(workspace, "ls-files", "-s", "link").startswith("120000")
    for name in ("-rf", "--all", ":(top)app.py", "*.py"):
        (workspace / name).write_text("data\n")
    status = await call(client, "git_add", paths=["-rf", "--all", ":(top)app.py"])
    staged = {e["path"] for e in status["entries"] if e["staged"]}
    assert {"-rf", "--all", ":(top)app.py"} <= staged and "*.py" not in staged
    assert "app.py" not in staged  # ':(top)' was a file name, not pathspec magic


async def test_hostile_repository_config_runs_nothing(client: Client, workspace: Path, marker: Path) -> None:
    touch = f"touch {marker}"
    (workspace / ".gitattributes").write_text("*.txt diff=evil filter=evil merge=evil\n")
    (workspace / "notes.txt").write_text("one\n")
    git(workspace, "add", ".")
    git(workspace, "commit", "-qm", "attributes")
    (workspace / "notes.txt").write_text("two\n")
    hostile = {
        "core.fsmonitor": touch,
        "core.pager": touch,
        "diff.external": touch,
        "diff.evil.textconv": touch,
        "diff.evil.command": touch,
        "filter.evil.clean": touch,
        "filter.evil.smudge": touch,
        "merge.evil.driver": touch,
        "gpg.program": touch,
        "commit.gpgSign": "true",
        "core.sshCommand": touch,
        "credential.helper": f"!{touch}",
    }
    for key, value in hostile.items():
        git(workspace, "config", key, value)
    hooks = workspace / ".git" / "hooks"
    for hook in ("pre-commit", "commit-msg", "post-commit", "post-checkout", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\n{touch}\n")
        (hooks / hook).chmod(0o755)
    git(workspace, "diff", "--stat")
    assert marker.exists(), "plain git runs the repository's programs: the test's config is live"
    marker.unlink()

    await call(client, "git_status")
    diff = await call(client, "git_diff")
    assert "+two" in diff["diff"]
    await call(client, "git_diff", target="HEAD")
    await call(client, "git_add", paths=["notes.txt"])
    await call(client, "git_log", max_count=3)
    committed = await client.call_tool("git_commit", {"message": "through tandem"})
    assert committed.is_error and "gpg" in committed.content[0].text.lower()  # signing runs gpg, not the config's
    git(workspace, "config", "commit.gpgSign", "false")
    await call(client, "git_commit", message="through tandem")
    await call(client, "git_show")
    await call(client, "git_branch", action="switch", name="side", create=True)
    await call(client, "git_stash", action="list")
    assert not marker.exists()


HOSTILE = [
    # (config key, command plain git runs it in, Tandem tool, its arguments)
    ("core.fsmonitor", ["status"], "git_status", {}),
    ("diff.external", ["diff"], "git_diff", {}),
    ("diff.evil.textconv", ["diff"], "git_diff", {}),
    ("diff.evil.command", ["diff"], "git_diff", {}),
    ("diff.evil.textconv", ["log", "-p", "-1"], "git_show", {}),
    ("filter.evil.clean", ["add", "notes.txt"], "git_add", {"paths": ["notes.txt"]}),
    ("filter.evil.smudge", ["checkout", "--", "notes.txt"], "git_restore", {"paths": ["notes.txt"]}),
    ("gpg.program", ["commit", "-qam", "signed", "-S"], "git_commit", {"message": "signed", "all": True}),
]


@pytest.mark.parametrize(("key", "plain", "tool", "arguments"), HOSTILE, ids=[f"{h[0]}-{h[2]}" for h in HOSTILE])
async def test_each_program_key_is_live_for_git_and_dead_for_tandem(
    client: Client, workspace: Path, marker: Path, key: str, plain: list[str], tool: str, arguments: dict[str, Any]
) -> None:
    (workspace / ".gitattributes").write_text("*.txt diff=evil filter=evil\n")
    (workspace / "notes.txt").write_text("one\n")
    git(workspace, "add", ".")
    git(workspace, "commit", "-qm", "attributes")
    (workspace / "notes.txt").write_text("two\n")
    program = marker.parent / "hostile.sh"
    program.write_text(f'#!/bin/sh\ntouch {marker}\nif [ -f "$1" ]; then cat "$1"; else cat; fi\n')
    program.chmod(0o755)
    git(workspace, "config", key, str(program))
    if key == "gpg.program":
        git(workspace, "config", "commit.gpgSign", "true")
    git(workspace, *plain, check=False)
    assert marker.exists(), f"plain git {plain[0]} runs {key}: the test's config is live"
    marker.unlink()
    (workspace / "notes.txt").write_text("three\n")
    await client.call_tool(tool, arguments)  # signing fails without the config's program: that is fine
    assert not marker.exists()


async def test_ssh_command_of_the_repository_is_not_used(workspace: Path, marker: Path) -> None:
    git(workspace, "remote", "add", "origin", "ssh://git.invalid/repo.git")
    git(workspace, "config", "core.sshCommand", f"touch {marker}; false")
    git(workspace, "fetch", "origin", check=False)
    assert marker.exists()
    marker.unlink()
    async for client in connect(workspace, remotes=["ssh://git.invalid/*"]):
        result = await client.call_tool("git_fetch", {})
    assert result.is_error and not marker.exists()


async def test_included_config_and_config_based_hooks_count_as_the_repositorys(
    client: Client, workspace: Path, marker: Path
) -> None:
    (workspace / "evil.cfg").write_text(f"[core]\n\tfsmonitor = touch {marker}\n")
    git(workspace, "config", "include.path", "../evil.cfg")
    (workspace / "app.py").write_text("changed\n")
    git(workspace, "status", "--short")
    assert marker.exists()
    marker.unlink()
    await call(client, "git_status")
    await call(client, "git_add", paths=["app.py"])
    assert not marker.exists()


async def test_hooks_run_when_allowed(workspace: Path, marker: Path) -> None:
    hook = workspace / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    async for client in connect(workspace, hooks=True):
        await call(client, "git_commit", message="hooked", allow_empty=True)
    assert marker.exists()


async def test_trusted_config_is_honoured(workspace: Path, marker: Path) -> None:
    (workspace / ".gitattributes").write_text("*.txt filter=lfs\n")
    git(workspace, "config", "filter.lfs.clean", f"sh -c 'touch {marker}; cat'")
    (workspace / "data.txt").write_text("payload\n")
    async for client in connect(workspace, trusted_config=["filter.lfs.*"]):
        await call(client, "git_add", paths=["data.txt"])
    assert marker.exists()


async def test_repository_boundaries(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inner = workspace / "sub"
    inner.mkdir()
    async for client in connect(inner):  # a workspace inside a repository does not reach the repository above
        assert "not in a git repository" in await refused(client, "git_status")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    git(workspace, "config", "core.worktree", str(elsewhere))
    async for client in connect(workspace):
        assert "outside the workspace" in await refused(client, "git_status")
    git(workspace, "config", "--unset", "core.worktree")
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    async for client in connect(workspace):
        log = await call(client, "git_log")
        assert [c["subject"] for c in log["commits"]] == ["first commit"]  # the workspace's, not $GIT_DIR's


async def test_nested_repository_through_repo(client: Client, workspace: Path) -> None:
    nested = workspace / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    (nested / "lib.py").write_text("VALUE = 1\n")
    status = await call(client, "git_add", paths=["vendor/lib/lib.py"], repo="vendor/lib")
    assert [e["path"] for e in status["entries"]] == ["vendor/lib/lib.py"]
    assert "outside the repository" in await refused(client, "git_add", paths=["app.py"], repo="vendor/lib")
    assert "outside the workspace" in await refused(client, "git_status", repo="..")


@pytest.fixture
def remote(tmp_path: Path, workspace: Path) -> Path:
    bare = tmp_path / "remotes" / "origin.git"
    bare.parent.mkdir()
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(workspace, "remote", "add", "origin", str(bare))
    git(workspace, "push", "-q", "origin", "main")
    return bare


async def test_clone_push_fetch_pull_with_allowed_remotes(
    client: Client, workspace: Path, remote: Path, tmp_path: Path
) -> None:
    cloned = await call(client, "git_clone", url=str(remote), path="copy")
    assert cloned["branch"] == "main" and cloned["path"] == "copy"
    assert (workspace / "copy" / "app.py").read_text() == "print('one')\n"
    (workspace / "copy" / "more.py").write_text("more = True\n")
    git(workspace / "copy", "add", "more.py")
    git(workspace / "copy", "commit", "-qm", "more")
    pushed = await call(client, "git_push", repo="copy")
    assert pushed["urls"] == [str(remote)] and "refs/heads/main" in pushed["output"]
    assert git(remote, "log", "-1", "--format=%s", "main").strip() == "more"

    git(workspace, "branch", "--set-upstream-to=origin/main", check=False)
    fetched = await call(client, "git_fetch")
    assert "main" in fetched["output"]
    pulled = await call(client, "git_pull")
    assert (workspace / "more.py").exists() and pulled["status"]["branch"] == "main"
    assert "ahead" not in pulled["status"] or pulled["status"]["behind"] == 0

    assert "already exists" in await refused(client, "git_clone", url=str(remote), path="copy")
    assert "outside the workspace" in await refused(client, "git_clone", url=str(remote), path="../escape")


async def test_remotes_must_be_allowed(client: Client, workspace: Path, remote: Path, marker: Path) -> None:
    assert "is not allowed" in await refused(client, "git_clone", url="https://example.invalid/x.git", path="x")
    message = await refused(client, "git_clone", url=f"ext::sh -c touch% {marker}", path="x")
    assert "refused remote URL" in message
    assert "refused remote URL" in await refused(client, "git_clone", url="--upload-pack=touch x", path="x")
    git(workspace, "remote", "add", "evil", "https://example.invalid/evil.git")
    assert "is not allowed" in await refused(client, "git_fetch", remote="evil")
    # insteadOf rewrites an allowed-looking name to a disallowed URL: the rewritten URL is what is checked
    git(workspace, "config", "url.https://example.invalid/.insteadOf", str(remote.parent) + "/")
    assert "is not allowed" in await refused(client, "git_fetch")
    git(workspace, "config", "--unset", "url.https://example.invalid/.insteadOf")
    git(workspace, "config", "remote.origin.uploadpack", f"touch {marker}; git-upload-pack")
    git(workspace, "fetch", "-q", "origin", check=False)
    assert marker.exists(), "plain git runs the repository's upload-pack: the test's config is live"
    marker.unlink()
    await call(client, "git_fetch")
    assert not marker.exists()
    assert "no remote named 'nowhere'" in await refused(client, "git_fetch", remote="nowhere")
    async for closed in connect(workspace):
        assert "none is allowed now" in await refused(closed, "git_fetch")


def test_overrides_keep_the_users_own_values() -> None:
    entries = parse_config_list(
        "global\x00credential.helper\nstore\x00local\x00credential.helper\n!evil\x00"
        "local\x00filter.Big.clean\nevil\x00local\x00user.name\nAda\x00global\x00core.sshcommand\nssh -i key\x00"
        "local\x00core.sshcommand\nevil\x00local\x00remote.Up.uploadpack\nevil\x00"
    )
    assert entries[0] == ConfigEntry("global", "credential.helper", "store")
    found = overrides_for(entries, GitSettings())
    assert found.neutralized == ["credential.helper", "filter.Big.clean", "core.sshcommand", "remote.Up.uploadpack"]
    assert found.options == [
        *("-c", "credential.helper=", "-c", "credential.helper=store"),
        *("-c", "filter.Big.clean="),
        *("-c", "core.sshcommand=", "-c", "core.sshcommand=ssh -i key"),
    ]
    assert found.programs == {"remote.Up.uploadpack": "git-upload-pack"}  # git takes its first value: no -c
    trusting = overrides_for(entries, GitSettings(trusted_config=["credential.*", "filter.big.*", "remote.*"]))
    assert trusting.neutralized == ["core.sshcommand"] and trusting.programs == {}
    sneaky = [ConfigEntry("local", "filter.a=b.clean", "evil")]
    with pytest.raises(ToolError, match="cannot be told to ignore"):
        overrides_for(sneaky, GitSettings())


async def test_a_pull_that_conflicts_says_which_files(
    client: Client, workspace: Path, remote: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    (other / "app.py").write_text("print('theirs')\n")
    git(other, "commit", "-qam", "theirs")
    git(other, "push", "-q", "origin", "main")
    (workspace / "app.py").write_text("print('ours')\n")
    git(workspace, "commit", "-qam", "ours")
    git(workspace, "branch", "--set-upstream-to=origin/main")
    diverged = await refused(client, "git_pull")
    assert "Not possible to fast-forward" in diverged or "fast-forward" in diverged
    conflict = await refused(client, "git_pull", mode="merge")
    assert "CONFLICT" in conflict and "app.py" in conflict
    status = await call(client, "git_status")
    assert status["conflicted"] == 1 and status["entries"][0]["staged"] == "unmerged"
