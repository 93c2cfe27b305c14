"""tandem.client.CatalogClient against a real server process on the fixture corpus: server answers, the local
cache, the role-registry fallback when the server is killed mid-session, and the server again once it is back."""

from __future__ import annotations

import http.server
import logging
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tandem.client import CatalogClient, CatalogError, CatalogUnavailable
from tests.conftest import ServerProcess

CORPUS = Path(__file__).parent.parent / "fixtures" / "catalog"
BACKEND_AGENTS = ["backend-developer", "fullstack-developer", "fastapi-developer", "go-backend-developer"]
DECISION = {
    "task_id": "T-7",
    "task_description": "add rate limiting to the public API",
    "agents_used": ["backend-developer", "security-auditor"],
    "result": "success",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(CORPUS, target, ignore=shutil.ignore_patterns(".tandem"))
    return target


def start(workspace: Path, tmp_path: Path, port: int, toolsets: str = "server,catalog") -> ServerProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    # ServerProcess passes --port 0 first; the later --port wins, so a restart comes back on the same port.
    return ServerProcess(workspace, "--toolsets", toolsets, "--port", str(port), env={"HOME": str(home)})


def server_rpc(url: str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the server itself says, asked without the client."""
    body = {"jsonrpc": "2.0", "method": method, "params": params or {}, "id": 1}
    return httpx.post(f"{url}/", json=body, timeout=30).json()["result"]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def server(workspace: Path, tmp_path: Path, port: int) -> Iterator[ServerProcess]:
    process = start(workspace, tmp_path, port)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(workspace: Path, port: int) -> Iterator[CatalogClient]:
    with CatalogClient(f"http://127.0.0.1:{port}", workspace=workspace) as catalog:
        yield catalog


def test_answers_come_from_the_server_then_from_the_client_cache(server: ServerProcess, client: CatalogClient) -> None:
    assert server.url == client.base_url
    first = client.query_agents(capability="react")
    assert first["answered_by"] == "server" and first["cache_hit"] is False
    assert first["agents"][0]["name"] == "react-specialist" and first["confidence"] > 0.9
    again = client.query_agents(capability="react")
    assert again["answered_by"] == "client-cache" and again["cache_hit"] is True
    assert again["agents"] == first["agents"] and again["reasoning"] == first["reasoning"]
    # The server was asked once: the second answer never left this process.
    assert server_rpc(server.url, "getMetrics")["queries"]["by_method"]["queryAgents"] == 1
    assert client.query_skills(context="extract tables from PDF files")["skills"][0]["name"] == "pdf-extraction"
    assert client.query_workflows("ship a new version to production")["workflows"][0]["name"] == "release"
    assert client.get_agent("react-specialist", "full")["agent"]["body"]
    pattern = client.get_orchestration_pattern("ship a new version to production")
    assert pattern["answered_by"] == "server" and pattern["source"] == "workflow:release"
    health = client.health()
    assert health["status"] == "healthy" and health["answered_by"] == "server"
    assert health["client"] == {"pending_decisions": 0, "cache": client.cache.stats()}


def test_the_server_killed_mid_session_then_restarted(
    workspace: Path, tmp_path: Path, port: int, client: CatalogClient, caplog: pytest.LogCaptureFixture
) -> None:
    first = start(workspace, tmp_path, port)
    try:
        assert client.query_agents(role="frontend_developer")["answered_by"] == "server"
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()

    with caplog.at_level(logging.INFO, logger="tandem.client"):
        down = client.query_agents(role="backend_developer")
        assert down["answered_by"] == "fallback"
        assert [a["name"] for a in down["agents"]] == BACKEND_AGENTS
        assert down["agents"][0]["role"] == "backend_developer" and down["agents"][0]["fallbacks"] == BACKEND_AGENTS[1:]
        assert "unreachable" in down["reasoning"] and "role registry" in down["reasoning"]
        assert 0 < down["confidence"] < 0.9
        # A fuzzy role name and a capability the registry lists are understood too.
        assert client.query_agents(role="backend developer")["agents"][0]["name"] == "backend-developer"
        assert client.query_agents(capability="containers")["agents"][0]["name"] == "ci-cd-engineer"
        # What the client had from the server is still answered from its cache.
        assert client.query_agents(role="frontend_developer")["answered_by"] == "client-cache"
        pattern = client.get_orchestration_pattern("design the database schema for invoices")
        assert pattern["answered_by"] == "fallback" and pattern["source"] == "registry"
        assert pattern["pattern"]["agent_sequence"][0] == "database-architect"
        assert client.query_pattern(DECISION["task_description"])["patterns"] == []
        with pytest.raises(CatalogUnavailable, match="needs the server"):
            client.get_agent("backend-developer")
        queued = client.cache_decision(**DECISION)
        assert queued["stored"] is False and queued["queued"] is True and queued["pending"] == 1
        assert client.pending_decisions == 1
        health = client.health()
        assert health["status"] == "unreachable" and health["registry"]["roles"] == 18
        assert health["client"]["pending_decisions"] == 1
    warnings = [r for r in caplog.records if r.name == "tandem.client" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()

    second = start(workspace, tmp_path, port)
    try:
        assert second.url == client.base_url
        with caplog.at_level(logging.INFO, logger="tandem.client"):
            back = client.query_agents(role="backend_developer")
        assert back["answered_by"] == "server" and back["agents"][0]["description"]
        assert client.pending_decisions == 0
        assert any("answers again" in r.getMessage() for r in caplog.records)
        # The decision queued while the server was away reached its database.
        stored = server_rpc(second.url, "queryPattern", {"goal": DECISION["task_description"]})
        assert stored["patterns"][0]["task_count"] == 1
        assert stored["patterns"][0]["pattern"]["agent_sequence"] == DECISION["agents_used"]
        assert client.query_pattern(DECISION["task_description"])["patterns"][0]["task_count"] == 1
    finally:
        second.stop()


def test_errors_the_server_answers_are_raised_not_fallen_back(server: ServerProcess, client: CatalogClient) -> None:
    with pytest.raises(CatalogError) as invalid:
        client.query_agents(capability="react", limit=0)
    assert invalid.value.code == -32602 and invalid.value.method == "queryAgents"
    assert "limit: Input should be greater than or equal to 1" in invalid.value.data["validation_errors"]
    assert "limit: Input should be greater than or equal to 1" in str(invalid.value)
    with pytest.raises(CatalogError, match="no agent named") as missing:
        client.get_agent("no-such-agent-at-all")
    assert missing.value.code == -32000
    with pytest.raises(CatalogError) as refused:
        client.cache_decision(**{**DECISION, "agents_used": []})
    assert refused.value.code == -32602 and client.pending_decisions == 0
    stored = client.cache_decision(**DECISION)
    assert stored["stored"] is True and stored["answered_by"] == "server"


def test_a_server_without_the_catalog_is_fallen_back_from(workspace: Path, tmp_path: Path, port: int) -> None:
    bare = start(workspace, tmp_path, port, toolsets="server")
    try:
        with CatalogClient(bare.url, workspace=workspace) as client:
            answer = client.query_agents(role="backend_developer")
        assert answer["answered_by"] == "fallback" and "-32601" in answer["reasoning"]
        assert [a["name"] for a in answer["agents"]] == BACKEND_AGENTS
    finally:
        bare.stop()


class _Broken(http.server.BaseHTTPRequestHandler):
    """Answers every POST with what the test put in ``server.reply``."""

    def do_POST(self) -> None:
        status, body = self.server.reply  # type: ignore[attr-defined]
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"oops", "HTTP 500"),
        (200, b"<html>not json</html>", "not JSON"),
        (200, b'{"jsonrpc": "2.0", "result": [1], "id": 1}', "no result object"),
        (200, b'{"hello": "world"}', "not a JSON-RPC 2.0 response"),
        (200, b'{"jsonrpc": "2.0", "result": {}, "id": 999}', "for another request"),
    ],
)
def test_a_broken_answer_is_fallen_back_from(workspace: Path, status: int, body: bytes, reason: str) -> None:
    broken = http.server.HTTPServer(("127.0.0.1", 0), _Broken)
    broken.reply = (status, body)  # type: ignore[attr-defined]
    threading.Thread(target=broken.serve_forever, daemon=True).start()
    try:
        with CatalogClient(f"http://127.0.0.1:{broken.server_port}", workspace=workspace) as client:
            answer = client.query_agents(role="sre")
            assert answer["answered_by"] == "fallback" and reason in answer["reasoning"]
            assert answer["agents"][0]["name"] == "sre-incident-responder"
            assert client.last_error is not None and reason in client.last_error
    finally:
        broken.shutdown()
        broken.server_close()


def test_a_server_that_never_answers_times_out_into_the_fallback(workspace: Path) -> None:
    # A listening socket nobody accepts from: the connection is made, the answer never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with CatalogClient(url, workspace=workspace, timeout_s=0.3) as client:
            answer = client.query_agents(role="architect")
            assert answer["answered_by"] == "fallback" and "Timeout" in answer["reasoning"]
            assert answer["agents"][0]["name"] == "architect"
            queued = client.cache_decision(**DECISION)
            assert queued["stored"] is False and queued["queued"] is True


def test_no_server_and_no_registry_is_said_plainly(tmp_path: Path) -> None:
    with CatalogClient(f"http://127.0.0.1:{free_port()}", workspace=tmp_path) as client:
        with pytest.raises(CatalogUnavailable) as unavailable:
            client.query_agents(role="backend_developer")
        message = str(unavailable.value)
        assert "unreachable" in message and str(tmp_path / ".claude" / "agent-registry.yml") in message
        assert "tandem serve --http" in message
        skills = client.query_skills(context="pdf")
        assert skills["skills"] == [] and skills["answered_by"] == "fallback" and skills["confidence"] == 0.0
        health = client.health()
        assert health["status"] == "unreachable" and health["registry"]["roles"] == 0
        assert "no role registry" in health["registry"]["problem"]
        assert client.cache_decision(**DECISION)["queued"] is True


def test_an_unusable_registry_is_named_and_an_edited_one_is_re_read(tmp_path: Path) -> None:
    registry = tmp_path / "roles.yml"
    registry.write_text("roles: [not, a, mapping]\n")
    with CatalogClient(f"http://127.0.0.1:{free_port()}", registry_path=registry) as client:
        with pytest.raises(CatalogUnavailable, match="no 'roles:' mapping"):
            client.query_agents(role="writer")
        registry.write_text("roles:\n  writer:\n    primary: technical-writer\n    fallbacks: [api-docs-writer]\n")
        assert [a["name"] for a in client.query_agents(role="writer")["agents"]] == [
            "technical-writer",
            "api-docs-writer",
        ]


def test_the_decision_queue_is_bounded(tmp_path: Path, workspace: Path) -> None:
    with CatalogClient(f"http://127.0.0.1:{free_port()}", workspace=workspace, max_pending=2) as client:
        for n in range(3):
            answer = client.cache_decision(**{**DECISION, "task_id": f"T-{n}"})
        assert client.pending_decisions == 2 and answer["pending"] == 2
        assert "'T-0'" in answer["reasoning"] and "dropped" in answer["reasoning"]


def test_a_queued_decision_the_server_refuses_is_dropped_and_the_rest_land(
    workspace: Path, tmp_path: Path, port: int, client: CatalogClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.cache_decision(**{**DECISION, "task_id": "T-bad", "pattern_id": "no-such-pattern"})["queued"]
    assert client.cache_decision(**DECISION)["queued"] and client.pending_decisions == 2
    server = start(workspace, tmp_path, port)
    try:
        with caplog.at_level(logging.WARNING, logger="tandem.client"):
            assert client.health()["answered_by"] == "server"
        assert client.pending_decisions == 0
        assert any("refused" in r.getMessage() and "no-such-pattern" in r.getMessage() for r in caplog.records)
        stored = server_rpc(server.url, "queryPattern", {"goal": DECISION["task_description"]})
        assert [p["task_count"] for p in stored["patterns"]] == [1]
    finally:
        server.stop()
