"""The workspace toolset through a real MCP client (the SDK's in-memory transport) on a real directory tree."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tandem.config import load_settings
from tandem.core import CallContext, Registry
from tandem.server import TandemServer
from tandem.toolsets.workspace.listing import _walk
from tests.toolsets.calls import call, refused, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("def greet(name):\n    return 'hello ' + name\n\nX = 1\nY = 1\n")
    (root / "README.md").write_text("# Demo\nSome text.\n")
    french = "Le café crème était déjà prêt à côté du marché; où est la crêperie? Noël, élève, château.\n"
    (root / "latin1.txt").write_bytes(french.encode("cp1252") * 3)
    (root / "blob.bin").write_bytes(b"\x89PNG\x00\x01\x02" * 100)
    (root / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    (root / "build").mkdir()
    (root / "build" / "out.js").write_text("built\n")
    (root / "debug.log").write_text("noise\n")
    (root / "keep.log").write_text("kept\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / "tandem.toml").write_text("log_level = 'warning'\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret\n")
    (root / "gateway").symlink_to(outside)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.fixture
async def client(workspace: Path) -> AsyncIterator[Client]:
    async with serving(workspace, toolsets=["workspace"]) as connected:
        yield connected


async def test_read_file_numbers_lines_and_pages(client: Client) -> None:
    text = await call(client, "read_file", path="src/pkg/mod.py")
    assert text.splitlines()[0] == "1\tdef greet(name):"
    page = await call(client, "read_file", path="src/pkg/mod.py", offset=2, limit=2)
    assert page.splitlines() == ["2\t    return 'hello ' + name", "3\t", "[lines 2-3 of 5; read on with offset=4]"]


async def test_read_file_detects_binary_and_encoding(client: Client) -> None:
    assert "binary file" in await refused(client, "read_file", path="blob.bin")
    latin = await call(client, "read_file", path="latin1.txt")
    assert "café crème était déjà prêt" in latin and "[decoded as cp1252]" in latin


@pytest.mark.parametrize("path", ["../outside/secret.txt", "gateway/secret.txt", "/etc/passwd", "~/.bashrc"])
async def test_file_tools_refuse_escapes(client: Client, workspace: Path, path: str) -> None:
    for tool, arguments in [
        ("read_file", {"path": path}),
        ("write_file", {"path": path, "content": "x"}),
        ("get_file_info", {"path": path}),
        ("delete_file", {"path": path}),
        ("list_directory", {"path": path}),
        ("search_files", {"pattern": "secret", "path": path}),
    ]:
        message = await refused(client, tool, **arguments)
        assert str(workspace.parent) not in message and "top secret" not in message
    assert (workspace.parent / "outside" / "secret.txt").read_text() == "top secret\n"


async def test_write_file_creates_and_protects_settings(client: Client, workspace: Path) -> None:
    written = await call(client, "write_file", path="notes/today.md", content="hi\n", create_dirs=True)
    assert written["created"] and written["sha256"] == hashlib.sha256(b"hi\n").hexdigest()
    assert (workspace / "notes" / "today.md").read_text() == "hi\n"
    assert "Tandem's own settings" in await refused(client, "write_file", path="tandem.toml", content="x")
    assert ".git/" in await refused(client, "write_file", path=".git/config", content="[core]\n")
    assert ".git/" in await refused(client, "delete_file", path=".git/HEAD")
    assert "data directory" in await refused(client, "write_file", path=".tandem/x", content="x", create_dirs=True)


async def test_edit_file_exact_counted_lines_hash_and_dry_run(client: Client, workspace: Path) -> None:
    path = workspace / "src" / "pkg" / "mod.py"
    before = path.read_text()
    preview = await call(
        client, "edit_file", path="src/pkg/mod.py", edits=[{"old": "hello", "new": "hi"}], dry_run=True
    )
    assert not preview["applied"] and "-    return 'hello ' + name" in preview["diff"] and path.read_text() == before
    assert "occurs 2 times" in await refused(
        client, "edit_file", path="src/pkg/mod.py", edits=[{"old": "= 1", "new": "= 2"}]
    )
    done = await call(client, "edit_file", path="src/pkg/mod.py", edits=[{"old": "= 1", "new": "= 2", "count": 2}])
    assert done["replacements"] == 2 and path.read_text().count("= 2") == 2
    stale = hashlib.sha256(before.encode()).hexdigest()
    assert "changed since you read it" in await refused(
        client, "edit_file", path="src/pkg/mod.py", edits=[{"start_line": 1, "new": "x"}], expected_hash=stale
    )
    lined = await call(
        client,
        "edit_file",
        path="src/pkg/mod.py",
        edits=[{"start_line": 4, "end_line": 5, "new": "Z = 3"}],
        expected_hash=done["sha256"],
    )
    assert path.read_text().endswith("\nZ = 3\n") and "+Z = 3" in lined["diff"]
    assert "not found" in await refused(client, "edit_file", path="src/pkg/mod.py", edits=[{"old": "nope", "new": "x"}])


async def test_edit_arguments_are_validated(client: Client) -> None:
    with pytest.raises(MCPError, match="either 'old'"):
        await client.call_tool("edit_file", {"path": "README.md", "edits": [{"new": "x"}]})


async def test_list_directory_respects_gitignore(client: Client) -> None:
    listing = await call(client, "list_directory", path=".", depth=3)
    paths = {entry["path"] for entry in listing["entries"]}
    assert {"src", "src/pkg", "src/pkg/mod.py", "README.md", "keep.log", "gateway"} <= paths
    assert not paths & {"build", "build/out.js", "debug.log", ".env", ".git", ".gitignore"}
    hidden = await call(client, "list_directory", include_hidden=True, include_ignored=True)
    assert {".env", "build", "debug.log"} <= {e["path"] for e in hidden["entries"]}
    assert ".git" not in {e["path"] for e in hidden["entries"]}
    python = await call(client, "list_directory", depth=3, pattern="*.py")
    assert [e["path"] for e in python["entries"]] == ["src/pkg/mod.py"]
    tree = await call(client, "directory_tree")
    assert "    src/\n        pkg/\n            mod.py" in tree and "build" not in tree


async def test_search_files(client: Client, workspace: Path) -> None:
    found = await call(client, "search_files", pattern="hello|Demo")
    assert {(m["path"], m["line"]) for m in found["matches"]} == {("src/pkg/mod.py", 2), ("README.md", 1)}
    assert not found["truncated"]
    literal = await call(client, "search_files", pattern="'hello ' +", literal=True, context=1)
    assert literal["matches"][0]["before"] == ["def greet(name):"] and literal["matches"][0]["after"] == [""]
    globbed = await call(client, "search_files", pattern="e", glob=["*.md"])
    assert {m["path"] for m in globbed["matches"]} == {"README.md"}
    ignored = await call(client, "search_files", pattern="built|noise")
    assert ignored["matches"] == []
    (workspace / "many.txt").write_text("needle\n" * 5000)
    capped = await call(client, "search_files", pattern="needle", max_results=10)
    assert len(capped["matches"]) == 10 and capped["truncated"] and "more than 10" in capped["notice"]
    assert "regex parse error" in await refused(client, "search_files", pattern="(unclosed")


async def test_catastrophic_regex_does_not_hang(client: Client, workspace: Path) -> None:
    (workspace / "aaa.txt").write_text(("a" * 5000 + "!\n") * 200)  # exponential for a backtracking engine
    (workspace / "match.txt").write_text("aaaa\n")
    result = await call(client, "search_files", pattern="(a+)+$", max_results=5, timeout_s=20)
    assert [m["path"] for m in result["matches"]] == ["match.txt"] and not result["truncated"]


async def test_find_files(client: Client) -> None:
    found = await call(client, "find_files", glob="*.py")
    assert found["paths"] == ["src/pkg/mod.py"]
    assert "keep.log" in (await call(client, "find_files", glob="*.log"))["paths"]


async def test_file_info_move_copy_delete(client: Client, workspace: Path) -> None:
    info = await call(client, "get_file_info", path="src/pkg/mod.py")
    assert (
        info["type"] == "file" and info["lines"] == 5 and info["size"] == (workspace / "src/pkg/mod.py").stat().st_size
    )
    await call(client, "copy_file", source="src", destination="src2")
    assert (workspace / "src2" / "pkg" / "mod.py").is_file()
    await call(client, "move_file", source="src2/pkg/mod.py", destination="moved.py")
    assert (workspace / "moved.py").is_file() and not (workspace / "src2/pkg/mod.py").exists()
    assert "already exists" in await refused(client, "move_file", source="moved.py", destination="README.md")
    await call(client, "move_file", source="moved.py", destination="README.md", overwrite=True)
    assert "is a directory" in await refused(client, "delete_file", path="src2")
    await call(client, "delete_file", path="src2", recursive=True)
    assert not (workspace / "src2").exists()
    await call(client, "delete_file", path="gateway")  # the link goes, what it points to stays
    assert not (workspace / "gateway").is_symlink() and (workspace.parent / "outside" / "secret.txt").exists()
    await call(client, "create_directory", path="a/b/c")
    assert (workspace / "a/b/c").is_dir()


async def test_write_keeps_mode(client: Client, workspace: Path) -> None:
    script = workspace / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    await call(client, "write_file", path="run.sh", content="#!/bin/sh\necho hi\n")
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


async def test_execute_command(client: Client, workspace: Path) -> None:
    result = await call(client, "execute_command", argv=["ls", "src"])
    assert result["exit_code"] == 0 and result["stdout"] == "pkg\n"
    split = await call(client, "execute_command", command="grep -c hello src/pkg/mod.py")
    assert split["stdout"] == "1\n"
    failed = await call(client, "execute_command", command="ls nothing-here")
    assert failed["exit_code"] != 0 and "nothing-here" in failed["stderr"]
    assert "allow-list" in await refused(client, "execute_command", command="rm -rf src")
    assert "shell operators" in await refused(client, "execute_command", command="ls | wc -l")
    assert "not allowed" in await refused(client, "execute_command", command="ls | wc -l", shell=True)
    assert "outside the workspace" in await refused(client, "execute_command", argv=["cat", "/etc/passwd"])
    assert "outside" in await refused(client, "execute_command", argv=["ls"], cwd="..")
    assert (workspace / "src").is_dir()


async def test_execute_command_streams_progress(client: Client, workspace: Path) -> None:
    script = workspace / "slow.py"
    script.write_text("import time\nfor i in range(4):\n    print('step', i, flush=True)\n    time.sleep(0.4)\n")
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    result = await client.call_tool("execute_command", {"argv": ["python3", "slow.py"]}, progress_callback=on_progress)
    assert json.loads(result.content[0].text)["exit_code"] == 0
    assert seen and all(m and m.startswith("step") for m in seen)


async def test_check_command_and_system(client: Client) -> None:
    git = await call(client, "check_command_exists", name="git")
    assert git["installed"] and git["allowed"]
    rm = await call(client, "check_command_exists", name="rm")
    assert rm["installed"] and not rm["allowed"] and "allow-list" in rm["reason"]
    system = await call(client, "get_system_info")
    assert system["cpus"] >= 1 and system["tools"]["git"].startswith("git version")
    status = await call(client, "get_system_status")
    assert status["uptime_s"] >= 0 and len(status["load_average"]) == 3


async def test_client_roots_narrow_the_workspace(workspace: Path) -> None:
    settings = load_settings(workspace, toolsets=["workspace"])
    tandem = TandemServer(Registry.from_entry_points(settings.toolsets), settings)
    roots = [workspace / "src", workspace.parent / "outside"]  # the second is not in the workspace: it widens nothing
    asked = 0

    async def list_roots(context: Any) -> types.ListRootsResult:
        nonlocal asked
        asked += 1
        return types.ListRootsResult(roots=[types.Root(uri=root.as_uri()) for root in roots])

    async with Client(tandem.server, mode="legacy", list_roots_callback=list_roots) as client:
        assert "2\t" in await call(client, "read_file", path="src/pkg/mod.py")
        assert "roots this client allows" in await refused(client, "read_file", path="README.md")
        assert "outside the workspace" in await refused(client, "read_file", path="../outside/secret.txt")
        assert asked == 1  # asked once per session
        roots[:] = [workspace]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await client.session.send_roots_list_changed()
        assert "# Demo" in await call(client, "read_file", path="README.md")
        assert asked == 2


async def test_globs_cannot_smuggle_paths_out(client: Client, workspace: Path) -> None:
    """Patterns only filter what is under the (confined) path; they never widen it."""
    for pattern in ("../*", "../outside/*", "/etc/*", "**/../../*"):
        listing = await call(client, "list_directory", depth=5, pattern=pattern, include_hidden=True)
        assert all(not e["path"].startswith(("..", "/")) for e in listing["entries"])
        found = await call(client, "find_files", glob=pattern)
        assert all(not p.startswith(("..", "/")) and "secret" not in p for p in found["paths"])
        searched = await call(client, "search_files", pattern="top secret", glob=[pattern])
        assert searched["matches"] == []
    assert (await call(client, "search_files", pattern="top secret", path="."))["matches"] == []


async def test_copy_tree_keeps_links_as_links(client: Client, workspace: Path) -> None:
    (workspace / "tree" / "sub").mkdir(parents=True)
    (workspace / "tree" / "sub" / "f.txt").write_text("f\n")
    (workspace / "tree" / "out").symlink_to(workspace.parent / "outside")
    await call(client, "copy_file", source="tree", destination="tree2")
    assert (workspace / "tree2" / "sub" / "f.txt").read_text() == "f\n"
    assert (workspace / "tree2" / "out").is_symlink()  # copied as a link: nothing from outside came in
    assert not (workspace / "tree2" / "out" / "secret.txt").resolve().is_relative_to(workspace)
    assert "outside the workspace" in await refused(client, "read_file", path="tree2/out/secret.txt")


async def test_a_directory_swapped_for_a_link_is_not_listed(workspace: Path) -> None:
    settings = load_settings(workspace, toolsets=["workspace"])
    ctx = CallContext(workspace=settings.workspace, settings=settings)
    (workspace / "swap").mkdir()
    (workspace / "swap" / "inner").mkdir()
    start = ctx.path("swap")
    walk = _walk(ctx, start, depth=3, include_hidden=True, ignored=True)
    first = next(walk)  # 'swap/inner' was checked and listed; now it becomes a link to the outside
    assert first[0].name == "inner"
    (workspace / "swap" / "inner").rmdir()
    (workspace / "swap" / "inner").symlink_to(workspace.parent / "outside")
    assert [path.name for path, _, _ in walk] == []


async def test_a_large_file_is_read_by_ranges(workspace: Path) -> None:
    (workspace / "tandem.toml").write_text("max_file_bytes = 1000\n")
    (workspace / "big.log").write_text("".join(f"entry {i}\n" for i in range(1, 2001)))
    async with serving(workspace, toolsets=["workspace"]) as client:
        assert "read a range of it" in await refused(client, "read_file", path="big.log")
        page = await call(client, "read_file", path="big.log", offset=1500, limit=2)
        assert page.splitlines() == ["1500\tentry 1500", "1501\tentry 1501", page.splitlines()[-1]]
        assert "offset=1502" in page
