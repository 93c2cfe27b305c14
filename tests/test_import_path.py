"""A workspace's own modules never run in place of Tandem's dependencies.

``python -m`` puts the working directory first on the import path, and Tandem starts itself (the daemon's
supervisor and server, the orchestrator's coder child) with the workspace as that directory. A repository holding
a ``typer.py`` or a ``pydantic/`` package would then have its code imported, and run, by merely being served.
Each test here puts such modules in a workspace, each of which leaves a mark and exits if it is ever imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest
from mcp import Client, StdioServerParameters

from tandem.daemon import DaemonFiles
from tests.toolsets.calls import call

SHADOW = 'import pathlib\npathlib.Path(__file__).with_name("{name}.ran").write_text("imported")\nraise SystemExit(3)\n'
SHADOWED = ("typer", "anyio", "pydantic")


def plant(workspace: Path) -> Path:
    """Modules named like Tandem's dependencies in ``workspace``, each of which marks that it ran."""
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "typer.py").write_text(SHADOW.format(name="typer"))
    (workspace / "anyio.py").write_text(SHADOW.format(name="anyio"))
    (workspace / "pydantic").mkdir()
    (workspace / "pydantic" / "__init__.py").write_text(SHADOW.format(name="pydantic"))
    return workspace


def ran(workspace: Path) -> list[str]:
    return sorted(p.name for p in workspace.rglob("*.ran"))


def clean_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TANDEM_", "MCP_", "PYTHONSAFEPATH"))}
    return env | {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}


def test_tandem_run_in_a_workspace_imports_none_of_its_modules(tmp_path: Path) -> None:
    """``python -m tandem`` and the ``tandem`` command, whose pack scans in worker processes forked from a fork
    server (started as ``python -c``, with the workspace as its directory)."""
    workspace = plant(tmp_path / "ws")
    (workspace / "app.py").write_text("password = 'not really'\n")
    script = Path(sys.executable).with_name("tandem")
    runs = [[sys.executable, "-m", "tandem", "tools"], [sys.executable, "-m", "tandem", "pack", "-o", "../m.xml"]]
    runs += [[str(script), "pack", "-o", "../script.xml"]] if script.is_file() else []
    for argv in runs:
        done = subprocess.run(
            argv, cwd=workspace, capture_output=True, text=True, timeout=120, check=False, env=clean_env(tmp_path)
        )
        assert done.returncode == 0, done.stderr
    assert "typer.py" in (tmp_path / "m.xml").read_text()  # the pack read them, as files
    assert ran(workspace) == []


@pytest.mark.anyio
async def test_a_stdio_server_started_in_a_workspace_imports_none_of_its_modules(tmp_path: Path) -> None:
    """Its warm-up starts the fork server and workers; a pack scans in them."""
    workspace = plant(tmp_path / "ws")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tandem", "serve", "--toolsets", "context"],
        env=clean_env(tmp_path),
        cwd=str(workspace),
    )
    async with Client(params, mode="legacy") as client:
        packed = await call(client, "pack_codebase")
    assert packed["file_count"] == 3
    assert ran(workspace) == []


def test_the_daemon_started_in_a_workspace_imports_none_of_its_modules(tmp_path: Path) -> None:
    workspace = plant(tmp_path / "ws")
    env = clean_env(tmp_path) | {"TANDEM_TOOLSETS": "server"}
    start = [sys.executable, "-P", "-m", "tandem", "start", "--port", "0", "--timeout", "60"]
    try:
        done = subprocess.run(start, cwd=workspace, capture_output=True, text=True, timeout=120, check=False, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        url = DaemonFiles(workspace / ".tandem").read_state()["url"]
        assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "healthy"
    finally:
        subprocess.run([sys.executable, "-P", "-m", "tandem", "stop"], cwd=workspace, timeout=120, check=False, env=env)
    assert ran(workspace) == []
