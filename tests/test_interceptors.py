"""The interceptor chain sees every message in and out, on every transport, and can continue, modify or block."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tandem.client import websocket_client
from tandem.config import load_settings
from tandem.core import Registry
from tandem.core.latency import MethodTimings
from tandem.server import TandemServer
from tandem.server.interceptors import (
    Blocked,
    CallNext,
    InterceptorChain,
    Message,
    RequestLogInterceptor,
    TimingInterceptor,
)
from tandem.transports.http import serve_http

pytestmark = pytest.mark.anyio


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    async def __call__(self, message: Message, call_next: CallNext) -> Message | None:
        self.seen.append((message.direction, message.kind, message.method))
        response = await call_next(message)
        if response is not None:
            self.seen.append((response.direction, response.kind, message.method))
        return response


class Policy:
    """Blocks one tool, answers another itself, rewrites arguments, and hides progress messages."""

    name = "policy"

    async def __call__(self, message: Message, call_next: CallNext) -> Message | None:
        params = message.params or {}
        if message.method == "tools/call" and params.get("name") == "test_error_handling":
            raise Blocked("test_error_handling is not allowed here", code=-32001)
        if message.method == "tools/call" and params.get("name") == "test_simple_text":
            return message.response(result={"content": [{"type": "text", "text": "policy says no"}], "isError": True})
        if message.method == "tools/call" and params.get("name") == "add":
            message = message.with_params({**params, "arguments": {**params.get("arguments", {}), "b": 100}})
        if message.method == "notifications/progress":
            message = message.with_params({**params, "message": "[redacted]"})
        response = await call_next(message)
        if response is not None and response.result is not None and message.method == "tools/call":
            response = replace(response, result={**response.result, "_meta": {"policy": "checked"}})
        return response


def _tandem(tmp_path, *interceptors) -> TandemServer:  # type: ignore[no-untyped-def]
    settings = load_settings(tmp_path, toolsets=["server", "conformance"], port=0)
    return TandemServer(Registry.from_entry_points(settings.toolsets), settings, InterceptorChain(interceptors))


@contextlib.asynccontextmanager
async def _serving(tandem: TandemServer) -> AsyncIterator[str]:
    ready = anyio.Event()
    url: list[str] = []

    def on_ready(u: str) -> None:
        url.append(u)
        ready.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve_http, tandem, on_ready)
        with anyio.fail_after(10):
            await ready.wait()
        yield url[0]
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _client(kind: str, tandem: TandemServer) -> AsyncIterator[Client]:
    if kind == "memory":
        async with Client(tandem.server, mode="legacy") as client:
            yield client
        return
    async with _serving(tandem) as url:
        transport = f"{url}/mcp" if kind == "http" else websocket_client(url.replace("http", "ws") + "/ws")
        async with Client(transport, mode="legacy") as client:
            yield client


@pytest.mark.parametrize("kind", ["memory", "http", "websocket"])
async def test_chain_continues_modifies_and_blocks(tmp_path, kind: str) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    tandem = _tandem(tmp_path, recorder, Policy())
    progress: list[str | None] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with _client(kind, tandem) as client:
        added = await client.call_tool("add", {"a": 1, "b": 2})
        answered = await client.call_tool("test_simple_text", {})
        with pytest.raises(MCPError) as blocked:
            await client.call_tool("test_error_handling", {})
        await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
        # The server still serves after a block.
        assert (await client.call_tool("add", {"a": 0, "b": 0})).content[0].text == "100"

    assert added.content[0].text == "101"
    assert added.meta == {"policy": "checked"}
    assert answered.is_error and answered.content[0].text == "policy says no"
    assert blocked.value.error.code == -32001
    assert blocked.value.error.message == "test_error_handling is not allowed here"
    assert progress == ["[redacted]"] * 3
    assert ("inbound", "request", "initialize") in recorder.seen
    assert ("inbound", "notification", "notifications/initialized") in recorder.seen
    assert ("outbound", "response", "tools/call") in recorder.seen
    assert recorder.seen.count(("outbound", "notification", "notifications/progress")) == 3


async def test_request_log_and_timing(tmp_path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    timing = TimingInterceptor()
    tandem = _tandem(tmp_path, RequestLogInterceptor(), timing)
    with caplog.at_level(logging.INFO, logger="tandem.requests"):
        async with Client(tandem.server, mode="legacy") as client:
            await client.call_tool("add", {"a": 1, "b": 2})
            await client.call_tool("test_error_handling", {})
            with pytest.raises(MCPError):
                await client.call_tool("add", {"a": "x"})
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "tandem.requests"]
    calls = [r for r in records if r["method"] == "tools/call"]
    assert [(r["tool"], r["outcome"]) for r in calls] == [
        ("add", "ok"),
        ("test_error_handling", "tool-error"),
        ("add", "error"),
    ]
    assert all(len(r["correlation_id"]) == 16 and r["transport"] == "in-memory" and r["ms"] >= 0 for r in calls)
    assert len({r["correlation_id"] for r in calls}) == 3
    snapshot = timing.snapshot()
    assert snapshot["tools/call:add"]["count"] == 2
    assert snapshot["tools/call:add"]["errors"] == 1
    assert snapshot["tools/call:test_error_handling"]["errors"] == 1
    assert snapshot["initialize"]["count"] == 1


def test_timing_percentiles_cover_the_most_recent_window() -> None:
    timings = MethodTimings()
    for ms in range(3000):  # rising latencies: the window holds the last 1024, 1976..2999
        timings.add(float(ms), failed=ms % 2 == 0)
    summary = timings.summary()
    assert summary["count"] == 3000 and summary["errors"] == 1500
    assert summary["max_ms"] == 2999.0
    assert summary["p50_ms"] == 1976 + 512
    assert summary["p95_ms"] == 1976 + int(0.95 * 1024)
