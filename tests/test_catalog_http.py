"""The catalog's plain JSON-RPC API, /health, /metrics and /reindex on a real server process, and that a write is
on disk when the call returns (SIGKILL right after it, then a restart)."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import ServerProcess

CORPUS = Path(__file__).parent / "fixtures" / "catalog"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(CORPUS, target, ignore=shutil.ignore_patterns(".tandem"))
    return target


def start(workspace: Path, tmp_path: Path) -> ServerProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return ServerProcess(workspace, "--toolsets", "server,catalog", env={"HOME": str(home)})


@pytest.fixture
def server(workspace: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    process = start(workspace, tmp_path)
    try:
        yield process
    finally:
        process.stop()


def rpc(server: ServerProcess, method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        body["params"] = params
    response = httpx.post(f"{server.url}/", json=body, timeout=30)
    assert response.status_code == 200
    return response.json()


def test_query_agents_answers_the_seed_shape(server: ServerProcess) -> None:
    answer = rpc(server, "queryAgents", {"capability": "react", "limit": 5})
    assert answer["id"] == 1 and answer["jsonrpc"] == "2.0"
    result = answer["result"]
    assert result["agents"][0]["name"] == "react-specialist"
    assert set(result["agents"][0]) >= {"name", "description", "model", "capabilities", "plugin"}
    assert result["cache_hit"] is False and result["confidence"] > 0.9 and "react" in result["reasoning"]
    assert rpc(server, "queryAgents", {"capability": "react", "limit": 5})["result"]["cache_hit"] is True
    skills = rpc(server, "querySkills", {"context": "extract tables from PDF files"})["result"]
    assert skills["skills"][0]["name"] == "pdf-extraction"
    workflows = rpc(server, "queryWorkflows", {"goal": "ship a new version to production"})["result"]
    assert workflows["workflows"][0]["name"] == "release"
    pattern = rpc(server, "getOrchestrationPattern", {"goal": "ship a new version to production"})["result"]
    assert pattern["source"] == "workflow:release" and pattern["pattern"]["agent_sequence"]


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"capability": "x" * 101}, "capability: String should have at most 100 characters"),
        ({"role": "r" * 51}, "role: String should have at most 50 characters"),
        ({"context": "c" * 501}, "context: String should have at most 500 characters"),
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 21}, "limit: Input should be less than or equal to 20"),
        ({"capability": 5}, "capability: Input should be a valid string"),
        ({"limit": 3, "unknown": 1}, "unknown: Extra inputs are not permitted"),
    ],
)
def test_invalid_params_are_listed(server: ServerProcess, params: dict[str, Any], problem: str) -> None:
    answer = rpc(server, "queryAgents", params)
    assert answer["error"]["code"] == -32602 and answer["error"]["message"] == "Invalid params"
    assert problem in answer["error"]["data"]["validation_errors"]
    # The client's input is never echoed back.
    assert "x" * 101 not in str(answer)


def test_protocol_errors(server: ServerProcess) -> None:
    assert rpc(server, "noSuchMethod")["error"]["code"] == -32601
    assert rpc(server, "queryAgents", [1, 2])["error"]["code"] == -32602
    raw = httpx.post(f"{server.url}/", content=b"{not json", headers={"content-type": "application/json"})
    assert raw.json()["error"]["code"] == -32700
    shapeless = httpx.post(f"{server.url}/", json={"method": "queryAgents"})
    assert shapeless.json()["error"]["code"] == -32600
    missing = rpc(server, "getAgent", {"name": "no-such-agent-at-all"})
    assert missing["error"]["code"] == -32000 and "no agent named" in missing["error"]["message"]
    batch = httpx.post(
        f"{server.url}/",
        json=[
            {"jsonrpc": "2.0", "method": "getHealth", "id": "a"},
            {"jsonrpc": "2.0", "method": "queryAgents", "params": {"role": "backend_developer"}},  # a notification
            {"jsonrpc": "2.0", "method": "queryAgents", "params": {"role": "backend_developer"}, "id": "b"},
        ],
    ).json()
    assert [a["id"] for a in batch] == ["a", "b"]
    assert batch[1]["result"]["agents"][0]["role"] == "backend_developer"


def test_health_metrics_and_prometheus(server: ServerProcess) -> None:
    rpc(server, "queryAgents", {"capability": "docker"})
    rpc(server, "queryAgents", {"capability": "docker"})
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "healthy"
    assert health["indexes"] == {"agents": 77, "skills": 38, "workflows": 24, "patterns": 0}
    assert health["database"]["connected"] is True and health["memory_mb"] > 0 and health["uptime_ms"] > 0
    assert health["cache"]["hits"] == 1 and health["cache"]["hit_rate"] == 0.5
    assert rpc(server, "getHealth")["result"]["indexes"]["agents"] == 77
    metrics = httpx.get(f"{server.url}/metrics").json()
    assert metrics["queries"]["by_method"]["queryAgents"] == 2
    assert metrics["performance"]["p99_query_time_ms"] >= metrics["performance"]["p50_query_time_ms"] >= 0
    assert metrics["patterns"] == {"total": 0, "avg_success_rate": 0.0}
    assert "tools/call:query_agents" in metrics["server"]["requests"]
    text = httpx.get(f"{server.url}/metrics", headers={"accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain")
    assert "# TYPE tandem_catalog_cache_hits_total counter" in text.text
    assert 'tandem_catalog_indexed{kind="agents"} 77.0' in text.text
    assert 'tandem_catalog_query_duration_milliseconds_count{method="queryAgents"} 2.0' in text.text


def test_reindex_endpoint_picks_up_new_files(server: ServerProcess, workspace: Path) -> None:
    (workspace / "plugins" / "languages" / "agents" / "zig-developer.md").write_text(
        "---\nname: zig-developer\ndescription: Zig systems programming\ncapabilities: [zig]\n---\nBody\n"
    )
    report = httpx.post(f"{server.url}/reindex", timeout=30).json()
    assert report["indexes"]["agents"] == 78
    assert rpc(server, "queryAgents", {"capability": "zig"})["result"]["agents"][0]["name"] == "zig-developer"


def test_a_decision_survives_sigkill(workspace: Path, tmp_path: Path) -> None:
    first = start(workspace, tmp_path)
    try:
        answer = rpc(
            first,
            "cacheDecision",
            {
                "task_id": "T-42",
                "task_description": "add OAuth2 login to the API",
                "agents_used": ["security-auditor", "backend-developer"],
                "result": "success",
                "duration_ms": 900,
            },
        )["result"]
        assert answer["stored"] is True
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
    second = start(workspace, tmp_path)
    try:
        found = rpc(second, "queryPattern", {"goal": "add OAuth2 login to the API"})["result"]
        assert found["patterns"][0]["pattern"]["id"] == answer["pattern_id"]
        assert found["patterns"][0]["task_count"] == 1
        again = rpc(
            second,
            "cacheDecision",
            {
                "task_id": "T-42",
                "task_description": "add OAuth2 login to the API",
                "agents_used": ["x"],
                "result": "failure",
            },
        )["result"]
        assert again["duplicate"] is True
    finally:
        second.stop()
