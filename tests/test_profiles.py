"""Profiles: ``tandem serve --profile coder|orchestrator|full``, run as a client runs them (real processes)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tandem.config import load_settings
from tandem.core import Registry
from tandem.core.profiles import PROFILE_TOOLSETS, toolsets_for

pytestmark = pytest.mark.anyio

CODER = ["server", "workspace", "code", "git"]


def serve(workspace: Path, *args: str) -> Client:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "tandem", "serve", "--workspace", str(workspace), *args]
    )
    return Client(params, mode="legacy")


def gone(pid: int, timeout: float = 15.0) -> bool:
    """Whether process ``pid`` has exited (a zombie counts: it no longer runs) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


async def test_serve_profile_coder_lists_only_the_coders_toolsets(tmp_path: Path) -> None:
    async with serve(tmp_path, "--profile", "coder") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        info = (await client.call_tool("server_info", {})).structured_content
    assert names == set(Registry.from_entry_points(CODER).tools)
    assert "ast_rewrite" in names and "git_commit" in names
    assert not {"pack_codebase", "delegate", "gateway_status"} & names
    assert sorted(info["toolsets"]) == sorted(CODER)


async def test_serve_profile_orchestrator_mounts_a_coder_child_and_stops_it_on_exit(tmp_path: Path) -> None:
    async with serve(tmp_path, "--profile", "orchestrator") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        read = await client.call_tool("coder.list_directory", {"path": "."})
        status = (await client.call_tool("gateway_status", {})).structured_content
    coder = status["upstreams"][0]
    assert {"coder.ast_rewrite", "coder.run_all_validations", "coder.read_file"} <= names
    assert {"pack_codebase", "delegate", "git_commit"} <= names  # the brain, and git so that commits pass its guards
    assert not {"ast_rewrite", "read_file", "execute_command"} & names  # the hands are the coder's
    assert not read.is_error
    assert coder["name"] == "coder" and coder["state"] == "running" and "--profile coder" in coder["target"]
    assert gone(coder["pid"]), "the coder child outlived the orchestrator"


def test_tools_profile_and_explicit_toolsets(tmp_path: Path) -> None:
    def tools(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tandem", "tools", "--workspace", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    orchestrator, explicit, bad = (
        tools("--profile", "orchestrator"),
        tools("--profile", "coder", "--toolsets", "git"),
        tools("--profile", "nope"),
    )
    listed = [line.split(":")[0] for line in orchestrator.stdout.splitlines() if not line.startswith(" ")]
    assert listed == list(PROFILE_TOOLSETS["orchestrator"] or ())
    assert [line.split(":")[0] for line in explicit.stdout.splitlines() if not line.startswith(" ")] == ["git"]
    assert bad.returncode == 2 and "profile: Input should be 'full', 'orchestrator' or 'coder'" in bad.stderr


def test_the_profile_comes_from_tandem_toml_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tandem.toml").write_text('profile = "coder"\n')
    assert toolsets_for(load_settings(tmp_path)) == CODER
    monkeypatch.setenv("TANDEM_PROFILE", "full")
    assert toolsets_for(load_settings(tmp_path)) is None  # every built-in but conformance
    (tmp_path / "tandem.toml").write_text('profile = "coder"\ntoolsets = ["server"]\n')
    assert toolsets_for(load_settings(tmp_path)) == ["server"]  # explicit toolsets win over the profile
