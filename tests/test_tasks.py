"""Tasks (the io.modelcontextprotocol/tasks extension) over real HTTP at protocol 2026-07-28."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx2 as httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

TASKS = "io.modelcontextprotocol/tasks"
_ids = itertools.count(1)


def rpc(
    url: str, method: str, params: dict[str, Any], *, tasks: bool = True, name: str | None = None
) -> tuple[int, dict]:
    """One 2026-07-28 request; the client declares the tasks extension unless told not to."""
    capabilities: dict[str, Any] = {"elicitation": {}, **({"extensions": {TASKS: {}}} if tasks else {})}
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "tasks-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": method,
    }
    bearing = params.get("name") if method == "tools/call" else params.get("taskId")
    if name is not None or bearing is not None:
        headers["mcp-name"] = name if name is not None else str(bearing)
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": {**params, "_meta": meta}}
    response = httpx.post(f"{url}/mcp", json=body, headers=headers, timeout=10)
    return response.status_code, response.json()


def wait_for(url: str, task_id: str, statuses: set[str], timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, reply = rpc(url, "tasks/get", {"taskId": task_id})
        if reply["result"]["status"] in statuses:
            return reply["result"]
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached {statuses}")


def test_a_long_call_becomes_a_task_that_can_be_cancelled(http_server) -> None:  # type: ignore[no-untyped-def]
    _, quick = rpc(http_server.url, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}})
    _, created = rpc(http_server.url, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 30}})
    task = created["result"]
    _, working = rpc(http_server.url, "tasks/get", {"taskId": task["taskId"]})
    health = httpx.get(f"{http_server.url}/health", timeout=5).json()
    _, ack = rpc(http_server.url, "tasks/cancel", {"taskId": task["taskId"]})
    cancelled = wait_for(http_server.url, task["taskId"], {"cancelled"}, timeout=2)
    _, again = rpc(http_server.url, "tasks/cancel", {"taskId": task["taskId"]})
    assert quick["result"]["resultType"] == "complete" and "taskId" not in quick["result"]
    assert task["resultType"] == "task" and task["status"] == "working"
    assert isinstance(task["ttlMs"], int) and isinstance(task["pollIntervalMs"], int)
    assert task["createdAt"].endswith("Z") and "requestState" not in task
    assert working["result"]["status"] == "working" and "result" not in working["result"]
    assert health["tasks"] >= 1
    assert ack["result"]["resultType"] == "complete" and "status" not in ack["result"]
    assert cancelled["status"] == "cancelled"
    assert again["result"]["resultType"] == "complete"


def test_input_is_answered_in_parts_and_the_task_finishes(http_server) -> None:  # type: ignore[no-untyped-def]
    _, created = rpc(http_server.url, "tools/call", {"name": "multi_input", "arguments": {}})
    task_id = created["result"]["taskId"]
    parked = wait_for(http_server.url, task_id, {"input_required"})
    yes = {"action": "accept", "content": {"confirm": True}}
    rpc(http_server.url, "tasks/update", {"taskId": task_id, "inputResponses": {"first": yes}})
    _, partly = rpc(http_server.url, "tasks/get", {"taskId": task_id})
    rpc(http_server.url, "tasks/update", {"taskId": task_id, "inputResponses": {"second": yes}})
    done = wait_for(http_server.url, task_id, {"completed", "failed"})
    assert set(parked["inputRequests"]) == {"first", "second"}
    assert parked["inputRequests"]["first"]["method"] == "elicitation/create"
    assert partly["result"]["status"] == "input_required"
    assert set(partly["result"]["inputRequests"]) == {"second"}
    assert done["status"] == "completed"
    assert done["result"]["content"][0]["text"] == "first={'confirm': True}, second={'confirm': True}"


def test_tool_errors_complete_and_crashes_fail(http_server) -> None:  # type: ignore[no-untyped-def]
    _, failing = rpc(http_server.url, "tools/call", {"name": "failing_job", "arguments": {}})
    _, broken = rpc(http_server.url, "tools/call", {"name": "protocol_error_job", "arguments": {}})
    tool_error = wait_for(http_server.url, failing["result"]["taskId"], {"completed", "failed"})
    crash = wait_for(http_server.url, broken["result"]["taskId"], {"completed", "failed"})
    assert tool_error["status"] == "completed" and tool_error["result"]["isError"] is True
    assert crash["status"] == "failed" and crash["error"]["code"] == -32603 and "result" not in crash
    assert "broke on purpose" not in str(crash)


def test_tasks_need_the_extension_and_matching_headers(http_server) -> None:  # type: ignore[no-untyped-def]
    status, required = rpc(http_server.url, "tools/call", {"name": "failing_job", "arguments": {}}, tasks=False)
    _, sync = rpc(http_server.url, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 0.05}}, tasks=False)
    _, gated = rpc(http_server.url, "tasks/get", {"taskId": "x"}, tasks=False)
    _, unknown = rpc(http_server.url, "tasks/get", {"taskId": "no-such-task"})
    _, created = rpc(http_server.url, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 5}})
    mismatch_status, mismatch = rpc(http_server.url, "tasks/get", {"taskId": created["result"]["taskId"]}, name="other")
    rpc(http_server.url, "tasks/cancel", {"taskId": created["result"]["taskId"]})
    _, removed = rpc(http_server.url, "tasks/list", {})
    assert status == 400 and required["error"]["code"] == -32021
    assert required["error"]["data"] == {"requiredCapabilities": {"extensions": {TASKS: {}}}}
    assert sync["result"]["content"][0]["text"] == "computed result after 0.05s"
    assert gated["error"]["code"] == -32021
    assert unknown["error"]["code"] == -32602
    assert mismatch_status == 400 and mismatch["error"]["code"] == -32020
    assert removed["error"]["code"] == -32601


@pytest.mark.anyio
async def test_a_session_client_gets_task_tools_run_in_line(http_server) -> None:  # type: ignore[no-untyped-def]
    async with Client(f"{http_server.url}/mcp", mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("slow_compute", {"seconds": 0.05, "label": "inline"})
        with pytest.raises(MCPError) as required:
            await client.call_tool("failing_job", {})
    assert tools["slow_compute"].execution is not None and tools["slow_compute"].execution.task_support == "optional"
    assert tools["greet"].execution is None
    assert result.content[0].text == "computed inline after 0.05s"
    assert required.value.error.code == -32021
