"""The HTTP face: /health, DNS-rebinding guards, the startup line, and hang-up cancellation when stateless."""

from __future__ import annotations

import json

import anyio
import httpx2 as httpx
import pytest
from mcp import Client

from tests.conftest import ServerProcess

pytestmark = pytest.mark.anyio

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def test_health_reports_status_version_toolsets_and_sessions(http_server) -> None:  # type: ignore[no-untyped-def]
    async with Client(f"{http_server.url}/mcp", mode="legacy") as client:
        await client.list_tools()
        async with httpx.AsyncClient(base_url=http_server.url) as http:
            health = (await http.get("/health")).json()
    assert health["status"] == "healthy"
    assert health["version"]
    assert health["uptime_s"] > 0
    assert health["toolsets"] == ["conformance", "server"]
    assert health["sessions"] >= 1
    assert health["sessions_by_transport"]["streamable-http"] >= 1


@pytest.mark.parametrize(
    ("server_name", "path"),
    [("http_server", "/mcp"), ("http_server", "/health"), ("http_server", "/sse"), ("stateless_server", "/mcp")],
)
async def test_foreign_host_and_origin_are_refused(request: pytest.FixtureRequest, server_name: str, path: str) -> None:
    server = request.getfixturevalue(server_name)
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        method = "POST" if path == "/mcp" else "GET"
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}) if method == "POST" else None
        rebinding = await client.request(method, path, content=body, headers={**ACCEPT, "host": "attacker.example"})
        foreign = await client.request(
            method, path, content=body, headers={**ACCEPT, "origin": "http://attacker.example"}
        )
    assert rebinding.status_code == 421
    assert foreign.status_code == 403
    assert "server_info" not in rebinding.text + foreign.text


@pytest.mark.parametrize(
    ("server_name", "version"), [("stateless_server", "2025-11-25"), ("http_server", "2026-07-28")]
)
async def test_an_accepted_host_admits_no_other(request: pytest.FixtureRequest, server_name: str, version: str) -> None:
    """The endpoint remembers (Host, Origin) pairs it accepted; a foreign one after them is still refused."""
    server = request.getfixturevalue(server_name)
    meta = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
    headers = {**ACCEPT, "mcp-protocol-version": version}
    if version == "2026-07-28":
        call["params"]["_meta"] = meta  # type: ignore[index]
        headers.update({"mcp-method": "tools/call", "mcp-name": "add"})
    origin = {"origin": server.url}
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        first = [await client.post("/mcp", json=call, headers={**headers, **origin}) for _ in range(2)]
        rebinding = await client.post("/mcp", json=call, headers={**headers, **origin, "host": "attacker.example"})
        foreign = await client.post("/mcp", json=call, headers={**headers, "origin": "http://attacker.example"})
        again = await client.post("/mcp", json=call, headers=headers)
    assert [r.json()["result"]["content"][0]["text"] for r in [*first, again]] == ["3", "3", "3"]
    assert (rebinding.status_code, foreign.status_code) == (421, 403)


def test_startup_line_says_where_it_listens(http_server) -> None:  # type: ignore[no-untyped-def]
    banner = next(line for line in http_server.lines if "listening on" in line)
    assert http_server.url.startswith("http://127.0.0.1:")
    assert "/mcp stateful" in banner and "/sse" in banner and "/ws" in banner and "/health" in banner
    assert "toolsets server, conformance" in banner


def test_invalid_setting_stops_startup_naming_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "tandem.toml").write_text("max_body_bytes = 'lots'\n")
    try:
        started = ServerProcess(tmp_path)
    except RuntimeError as exc:
        failed = exc
    else:
        started.stop()
        pytest.fail("the server started despite an invalid setting")
    assert "max_body_bytes: Input should be a valid integer" in str(failed)
    assert "tandem.toml" in str(failed)
    assert "Traceback" not in str(failed)


async def test_stateless_hang_up_cancels_the_call(stateless_server) -> None:  # type: ignore[no-untyped-def]
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 30}}}
    async with httpx.AsyncClient(base_url=stateless_server.url, timeout=httpx.Timeout(0.5)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/mcp", json=call, headers={**ACCEPT, "mcp-protocol-version": "2025-11-25"})
    async with Client(f"{stateless_server.url}/mcp", mode="legacy") as client:
        timings: dict = {}
        with anyio.fail_after(10):
            while "tools/call:slow" not in timings:
                health = await client.call_tool("server_health", {})
                timings = (health.structured_content or {})["requests"]
                await anyio.sleep(0.1)
    assert timings["tools/call:slow"]["max_ms"] < 10_000
