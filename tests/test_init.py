"""``tandem init`` as a user runs it: checks on this machine, a real daemon started and asked for its health, the
written client configuration used the way Claude Code (HTTP) and Claude Desktop (stdio) use it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tandem.daemon import DaemonFiles
from tests.test_import_path import plant, ran

CORPUS = Path(__file__).parent / "fixtures" / "catalog"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "init", "version": "1"}},
}


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "ws"
    shutil.copytree(CORPUS, target, ignore=shutil.ignore_patterns(".tandem"))
    yield target
    files = DaemonFiles(target / ".tandem")
    if files.running_pid() is not None:
        subprocess.run([sys.executable, "-m", "tandem", "stop", "-w", str(target)], timeout=60, check=False)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TANDEM_", "MCP_"))}
    return {**clean, "HOME": str(home)}


def init(workspace: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tandem", "init", "--workspace", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_init_starts_a_healthy_daemon_and_configures_claude_code(workspace: Path, env: dict[str, str]) -> None:
    mine = {"mcpServers": {"other": {"command": "other-server"}}, "note": "kept"}
    (workspace / ".mcp.json").write_text(json.dumps(mine))
    done = init(workspace, env, "--port", "0")
    assert done.returncode == 0, done.stderr + done.stdout
    for name in ("python", "data directory", "port", "git", "rg", "ast-grep", "ruff"):
        assert f"] {name}: " in done.stdout
    assert "catalog: 77 agents, 38 skills, 24 workflows" in done.stdout and "health: healthy" in done.stdout
    config = json.loads((workspace / ".mcp.json").read_text())
    assert config["note"] == "kept" and config["mcpServers"]["other"] == {"command": "other-server"}
    entry = config["mcpServers"]["tandem"]
    assert entry["type"] == "http" and entry["url"].endswith("/mcp")
    assert f"{workspace / '.mcp.json'} updated" not in done.stdout and "added to" in done.stdout
    # The URL written is one an MCP client can initialize against.
    answer = httpx.post(
        entry["url"], json=INITIALIZE, headers={"Accept": "application/json, text/event-stream"}, timeout=30
    )
    assert answer.status_code == 200 and '"serverInfo"' in answer.text and "tandem" in answer.text.lower()
    # A second run finds the daemon running and changes nothing.
    again = init(workspace, env)
    assert again.returncode == 0 and "already runs at" in again.stdout and "already up to date" in again.stdout
    assert json.loads((workspace / ".mcp.json").read_text()) == config


def test_the_desktop_snippet_is_a_working_stdio_server(workspace: Path, env: dict[str, str], tmp_path: Path) -> None:
    done = init(workspace, env, "--no-start")
    assert done.returncode == 0, done.stderr
    assert "not started (--no-start)" in done.stdout and "Claude Desktop: merge " in done.stdout
    assert json.loads((workspace / ".mcp.json").read_text())["mcpServers"]["tandem"] == {
        "type": "http",
        "url": "http://127.0.0.1:8765/mcp",
    }
    snippet = json.loads((workspace / ".tandem" / "clients" / "claude_desktop_config.json").read_text())
    server = snippet["mcpServers"]["tandem"]
    # Started where modules named like Tandem's dependencies lie, it imports its own (tests/test_import_path.py).
    elsewhere = plant(tmp_path / "elsewhere")
    # What Claude Desktop does with it: spawn the command, speak JSON-RPC lines on its stdin and stdout.
    spawned = subprocess.run(
        [server["command"], *server["args"]],
        input=json.dumps(INITIALIZE) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=elsewhere,
        check=False,
    )
    reply = json.loads(spawned.stdout.splitlines()[0])
    assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"].lower().startswith("tandem")
    assert str(workspace) in spawned.stderr  # it serves the workspace init was run for, whatever its cwd
    assert ran(elsewhere) == []


def test_the_seed_port_variable_is_what_gets_written(workspace: Path, env: dict[str, str]) -> None:
    done = init(workspace, {**env, "MCP_PORT": "9123"}, "--no-start")
    assert done.returncode == 0, done.stderr
    assert json.loads((workspace / ".mcp.json").read_text())["mcpServers"]["tandem"]["url"] == (
        "http://127.0.0.1:9123/mcp"
    )


def test_a_broken_mcp_json_is_never_overwritten(workspace: Path, env: dict[str, str]) -> None:
    broken = '{"mcpServers": {"other": {"command": "x"},}}'  # a trailing comma, hand-edited
    (workspace / ".mcp.json").write_text(broken)
    done = init(workspace, env, "--no-start")
    assert done.returncode == 1 and "is not valid JSON" in done.stderr and "fix it" in done.stderr
    assert (workspace / ".mcp.json").read_text() == broken
    (workspace / ".mcp.json").write_text('{"mcpServers": ["a list"]}')
    assert "has no mcpServers object" in init(workspace, env, "--no-start").stderr


def test_a_port_held_by_another_program_stops_init_before_anything_is_written(
    workspace: Path, env: dict[str, str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = init(workspace, env, "--port", str(port))
    assert done.returncode == 1
    assert "[FAIL] port: " in done.stdout and "in use by another program" in done.stdout
    assert "cannot continue: fix port" in done.stderr
    assert not (workspace / ".mcp.json").exists() and DaemonFiles(workspace / ".tandem").running_pid() is None


def test_a_data_directory_that_cannot_be_written_fails_the_check(workspace: Path, env: dict[str, str]) -> None:
    (workspace / "blocked").write_text("a file where the data directory should be")
    done = init(workspace, {**env, "MCP_DATA_DIR": str(workspace / "blocked" / "data")}, "--no-start")
    assert done.returncode == 1 and "[FAIL] data directory: " in done.stdout and "not writable" in done.stdout


def test_an_mcp_json_that_links_out_of_the_workspace_is_refused(
    workspace: Path, env: dict[str, str], tmp_path: Path
) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text('{"mcpServers": {}}')
    (workspace / ".mcp.json").symlink_to(outside)
    done = init(workspace, env, "--no-start")
    assert done.returncode == 1 and ".mcp.json" in done.stderr and "symlink" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert outside.read_text() == '{"mcpServers": {}}'  # nothing written through the link
