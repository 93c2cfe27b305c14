"""The same registry, the same results, on every transport: list, call, progress, errors, cancellation."""

from __future__ import annotations

import time

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from tandem.core import Registry
from tests.clients import TRANSPORTS, connect

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {
    "server_info",
    "server_health",
    "test_simple_text",
    "test_tool_with_progress",
    "test_error_handling",
    "add",
    "slow",
}


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def client_for(transport, http_server, stateless_server, tmp_path):  # type: ignore[no-untyped-def]
    return lambda: connect(
        transport, stateful_url=http_server.url, stateless_url=stateless_server.url, workspace=tmp_path
    )


async def test_same_tool_list_everywhere(client_for) -> None:  # type: ignore[no-untyped-def]
    async with client_for() as client:
        listed = (await client.list_tools()).tools
    names = {t.name for t in listed}
    assert names >= EXPECTED_TOOLS
    by_name = {t.name: t for t in listed}
    assert by_name["add"].input_schema["required"] == ["a", "b"]
    assert by_name["add"].input_schema["properties"]["a"]["type"] == "integer"
    assert by_name["server_info"].output_schema is not None
    assert by_name["server_info"].annotations is not None and by_name["server_info"].annotations.read_only_hint


async def test_same_results_everywhere(client_for, transport) -> None:  # type: ignore[no-untyped-def]
    async with client_for() as client:
        simple = await client.call_tool("test_simple_text", {})
        total = await client.call_tool("add", {"a": 2, "b": 40})
        info = await client.call_tool("server_info", {})
    assert simple.content[0].text == "This is a simple text response for testing."
    assert not simple.is_error
    assert total.content[0].text == "42"
    assert info.structured_content is not None
    assert info.structured_content["name"] == "tandem"
    conformance_tools = len(Registry.from_entry_points(["conformance"]).tools)
    assert info.structured_content["toolsets"] == {"server": 2, "conformance": conformance_tools}
    expected_transport = {
        "memory": "in-memory",
        "stdio": "stdio",
        "http": "streamable-http",
        "http-stateless": "streamable-http",
        "http-2026": "streamable-http",
        "sse": "sse",
        "websocket": "websocket",
    }[transport]
    assert info.structured_content["transport"] == expected_transport


async def test_progress_notifications_everywhere(client_for) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with client_for() as client:
        result = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
    assert result.content[0].text == "Progress test completed"
    assert [p for p, _, _ in seen] == [0, 50, 100]
    assert all(total == 100 for _, total, _ in seen)


async def test_tool_error_is_an_error_result(client_for) -> None:  # type: ignore[no-untyped-def]
    async with client_for() as client:
        result = await client.call_tool("test_error_handling", {})
    assert result.is_error
    assert result.content[0].text == "This tool intentionally returns an error for testing"


async def test_invalid_arguments_are_a_protocol_error(client_for) -> None:  # type: ignore[no-untyped-def]
    async with client_for() as client:
        with pytest.raises(MCPError) as bad_type:
            await client.call_tool("add", {"a": 1, "b": "not a number"})
        with pytest.raises(MCPError) as missing:
            await client.call_tool("add", {"a": 1})
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("no_such_tool", {})
        # The connection survives bad calls.
        assert (await client.call_tool("add", {"a": 1, "b": 1})).content[0].text == "2"
    assert bad_type.value.error.code == -32602
    assert "b:" in bad_type.value.error.message
    assert missing.value.error.code == -32602
    assert "b: Field required" in missing.value.error.message
    assert unknown.value.error.code == -32602
    assert "no_such_tool" in unknown.value.error.message


async def test_cancellation_stops_the_tool(client_for, transport) -> None:  # type: ignore[no-untyped-def]
    if transport == "http-stateless":
        pytest.skip("a stateless server has no session to name the cancelled call; test_http covers hang-up instead")
    async with client_for() as client:
        started = time.monotonic()
        with anyio.move_on_after(0.5):
            await client.call_tool("slow", {"seconds": 30})
        assert time.monotonic() - started < 5
        # The server ended the call instead of letting it sleep on: its timing shows a finished, short call.
        timings: dict = {}
        with anyio.fail_after(10):
            while "tools/call:slow" not in timings:
                health = await client.call_tool("server_health", {})
                timings = health.structured_content["requests"] if health.structured_content else {}
                await anyio.sleep(0.1)
    slow = timings["tools/call:slow"]
    assert slow["max_ms"] < 10_000
