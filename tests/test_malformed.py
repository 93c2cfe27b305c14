"""Malformed input on every transport gets the right JSON-RPC or HTTP error, and the server keeps serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx2 as httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, InvalidStatus

pytestmark = pytest.mark.anyio

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def _error(body: str) -> dict:
    """The JSON-RPC error in a JSON body or an SSE body (whose priming event carries no data)."""
    if body.startswith(("event:", "data:", "id:", "retry:")):
        body = next(line[5:] for line in body.splitlines() if line.startswith("data:") and line[5:].strip())
    return json.loads(body)["error"]


async def _still_serving(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "healthy"


@pytest.mark.parametrize("server_name", ["http_server", "stateless_server"])
async def test_streamable_http_rejects_malformed_requests(server_name: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(server_name)
    async with httpx.AsyncClient(base_url=server.url) as client:
        bad_json = await client.post("/mcp", content=b"{nope", headers=ACCEPT)
        wrong_shape = await client.post("/mcp", content=b'{"hello": "world"}', headers=ACCEPT)
        too_big = await client.post("/mcp", content=b"x" * (5 * 1024 * 1024), headers=ACCEPT)
        wrong_type = await client.post(
            "/mcp", content=json.dumps(INIT), headers={**ACCEPT, "content-type": "text/plain"}
        )
    assert bad_json.status_code == 400
    assert _error(bad_json.text)["code"] == -32700
    assert wrong_shape.status_code == 400
    assert _error(wrong_shape.text)["code"] in (-32600, -32602)
    assert too_big.status_code == 413
    assert wrong_type.status_code in (400, 415)
    await _still_serving(server.url)


async def test_streamable_http_unknown_session_and_method(http_server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=http_server.url) as client:
        ghost = await client.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={**ACCEPT, "mcp-session-id": "f" * 32},
        )
        opened = await client.post("/mcp", json=INIT, headers=ACCEPT)
        session = {**ACCEPT, "mcp-session-id": opened.headers["mcp-session-id"]}
        await client.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
        unknown = await client.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "no/such"}, headers=session)
        listed = await client.post("/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers=session)
        closed = await client.delete("/mcp", headers=session)
        after_close = await client.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 4, "method": "tools/list"}, headers=session
        )
    assert ghost.status_code == 404
    assert _error(ghost.text)["message"] == "Session not found"
    assert opened.status_code == 200
    assert _error(unknown.text)["code"] == -32601
    assert "server_info" in listed.text
    assert closed.status_code == 200
    assert after_close.status_code == 404


async def test_sse_rejects_malformed_and_unknown_sessions(http_server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=http_server.url) as client:
        unknown = await client.post("/messages/?session_id=" + "0" * 32, json=INIT, headers=ACCEPT)
        no_session = await client.post("/messages/", json=INIT, headers=ACCEPT)
        async with client.stream("GET", "/sse", headers={"accept": "text/event-stream"}) as stream:
            lines = stream.aiter_lines()
            endpoint = ""
            async for line in lines:
                if line.startswith("data:"):
                    endpoint = line[5:].strip()
                    break
            bad_json = await client.post(endpoint, content=b"{nope", headers=ACCEPT)
            too_big = await client.post(endpoint, content=b"x" * (5 * 1024 * 1024), headers=ACCEPT)
            good = await client.post(endpoint, json=INIT, headers=ACCEPT)
            reply = ""
            async for line in lines:
                if line.startswith("data:") and '"id":1' in line:
                    reply = line[5:]
                    break
    assert unknown.status_code == 404
    assert no_session.status_code == 400
    assert endpoint.startswith("/messages/?session_id=")
    assert bad_json.status_code == 400
    assert too_big.status_code == 413
    assert good.status_code == 202
    assert json.loads(reply)["result"]["serverInfo"]["name"] == "tandem"
    await _still_serving(http_server.url)


async def test_websocket_answers_malformed_frames(http_server) -> None:  # type: ignore[no-untyped-def]
    url = http_server.url.replace("http://", "ws://") + "/ws"
    async with websockets.connect(url, subprotocols=["mcp"], max_size=None) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "mcp"
        replies = []
        for frame in [
            "{nope",
            '{"hello": "world", "id": 9}',
            json.dumps(INIT),
            '{"jsonrpc":"2.0","id":2,"method":"x/y"}',
        ]:
            await ws.send(frame)
            replies.append(json.loads(await ws.recv()))
        await ws.send(b'{"jsonrpc":"2.0","id":3,"method":"ping"}')
        replies.append(json.loads(await ws.recv()))
        await ws.send("x" * (5 * 1024 * 1024))
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
    assert replies[0]["error"]["code"] == -32700
    assert replies[1]["error"]["code"] == -32600 and replies[1]["id"] == 9
    assert replies[2]["result"]["serverInfo"]["name"] == "tandem"
    assert replies[3]["error"]["code"] == -32601
    assert replies[4] == {"jsonrpc": "2.0", "id": 3, "result": {}}
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    await _still_serving(http_server.url)


async def test_websocket_clients_that_leave_leave_no_errors(http_server) -> None:  # type: ignore[no-untyped-def]
    url = http_server.url.replace("http://", "ws://") + "/ws"
    before = len(http_server.lines)
    for _ in range(3):
        async with websockets.connect(url, subprotocols=["mcp"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps(INIT))
            await ws.recv()
    await _still_serving(http_server.url)
    logged = http_server.lines[before:]
    assert not [line for line in logged if "Traceback" in line or "Exception in ASGI" in line]


async def test_websocket_refuses_foreign_subprotocol_and_origin(http_server) -> None:  # type: ignore[no-untyped-def]
    url = http_server.url.replace("http://", "ws://") + "/ws"
    with pytest.raises(InvalidStatus) as wrong_protocol:
        async with websockets.connect(url, subprotocols=["graphql-ws"]):  # type: ignore[list-item]
            pass
    with pytest.raises(InvalidStatus) as foreign_origin:
        async with websockets.connect(url, subprotocols=["mcp"], origin="http://evil.example"):  # type: ignore[list-item,arg-type]
            pass
    assert wrong_protocol.value.response.status_code == 403
    assert foreign_origin.value.response.status_code == 403
    await _still_serving(http_server.url)


def test_stdio_answers_malformed_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = [
        "{nope",
        '{"hello": "world"}',
        json.dumps(INIT),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json.dumps({"jsonrpc": "2.0", "id": 2, "method": "no/such"}),
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
            }
        ),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tandem", "serve", "--toolsets", "conformance", "--workspace", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n".join(lines) + "\n")
    proc.stdin.flush()
    replies = [json.loads(proc.stdout.readline()) for _ in range(5)]
    proc.stdin.close()
    assert proc.wait(10) == 0
    by_id = {r.get("id"): r for r in replies if r.get("id") is not None}
    errors = [r["error"]["code"] for r in replies if r.get("id") is None]
    assert sorted(errors) == [-32700, -32600]
    assert by_id[1]["result"]["serverInfo"]["name"] == "tandem"
    assert by_id[2]["error"]["code"] == -32601
    assert by_id[3]["result"]["content"][0]["text"] == "3"
    # Nothing but JSON-RPC reached stdout; the banner went to stderr.
    assert "Tandem" in proc.stderr.read()


def _stdio_server(tmp_path, **env: str) -> subprocess.Popen:  # type: ignore[no-untyped-def, type-arg]
    return subprocess.Popen(
        [sys.executable, "-m", "tandem", "serve", "--toolsets", "conformance", "--workspace", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )


def test_stdio_drops_a_line_over_the_size_limit_and_keeps_serving(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = _stdio_server(tmp_path, TANDEM_MAX_BODY_BYTES="65536")
    assert proc.stdin is not None and proc.stdout is not None
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
    at_limit = json.dumps({**call, "id": 3, "params": {**call["params"], "_meta": {"pad": "x" * 65000}}})
    over = json.dumps({**call, "id": 4, "params": {**call["params"], "_meta": {"pad": "x" * 70000}}})
    assert len(at_limit) <= 65536 < len(over)
    for line in [json.dumps(INIT), json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})]:
        proc.stdin.write(line.encode() + b"\n")
    proc.stdin.write(("x" * 5_000_000 + "\n").encode())  # no JSON at all, and 76 times the limit
    for line in [over, at_limit, json.dumps(call)]:
        proc.stdin.write(line.encode() + b"\n")
    proc.stdin.flush()
    replies = [json.loads(proc.stdout.readline()) for _ in range(5)]
    proc.stdin.close()
    assert proc.wait(10) == 0
    dropped = [r for r in replies if r.get("id") is None]
    assert [r["error"]["code"] for r in dropped] == [-32600, -32600]
    assert all("size limit" in r["error"]["message"] for r in dropped)
    answered = {r["id"]: r for r in replies if r.get("id") is not None}
    assert answered[1]["result"]["serverInfo"]["name"] == "tandem"
    assert answered[3]["result"]["content"][0]["text"] == "3"  # at the limit: served
    assert answered[2]["result"]["content"][0]["text"] == "3"  # the line after them: served
    assert 4 not in answered
    assert b"dropped a line of" in proc.stderr.read()


def _peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        lines = status.read().splitlines()
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak memory from /proc")
def test_stdio_memory_stays_flat_under_an_endless_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """200 MB without a newline (what a runaway writer on the pipe sends): the server reads and drops it in pieces
    and its peak memory grows by a few megabytes, not by the line."""
    proc = _stdio_server(tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(INIT).encode() + b"\n")
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["id"] == 1
    before = _peak_rss_kb(proc.pid)
    chunk = b"y" * (1 << 20)
    for _ in range(200):
        proc.stdin.write(chunk)
    proc.stdin.write(b"\n" + json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"}).encode() + b"\n")
    proc.stdin.flush()
    dropped = json.loads(proc.stdout.readline())
    pong = json.loads(proc.stdout.readline())
    grown_mb = (_peak_rss_kb(proc.pid) - before) / 1024
    proc.stdin.close()
    assert proc.wait(10) == 0
    assert grown_mb < 32, grown_mb
    assert dropped["error"]["code"] == -32600 and pong == {"jsonrpc": "2.0", "id": 7, "result": {}}


CLAIM = """
import os, stat, sys
from tandem.transports.stdio import _claimed_stdin
kind = lambda: "pipe" if stat.S_ISFIFO(os.fstat(0).st_mode) else "char" if stat.S_ISCHR(os.fstat(0).st_mode) else "?"
before = kind()
with _claimed_stdin() as stream:
    inside, read_there = kind(), os.read(0, 100)  # fd 0: the null device
    line = stream.readline()
print(before, inside, repr(read_there), repr(line), kind())
"""


def test_stdio_points_fd_0_at_the_null_device_while_serving() -> None:
    """What a tool or child process reads from stdin while the server reads the protocol: nothing; fd 0 is the
    protocol's pipe again afterwards."""
    done = subprocess.run(
        [sys.executable, "-c", CLAIM], input=b"first line\nsecond\n", capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == ["pipe", "char", "b''", "b'first", "line\\n'", "pipe"]


def test_bounded_lines_cut_at_the_limit() -> None:
    import io

    from tandem.transports.stdio import BoundedLines

    data = b"a" * 8 + b"\n" + b"b" * 9 + b"\n" + b"\xff\xfe ok\r\n" + b"c" * 30 + b"\n" + b"tail"
    lines = BoundedLines(io.BytesIO(data), 8)
    read = [lines.read_line() for _ in range(6)]
    assert read[0] == "a" * 8 + "\n"
    assert read[1] == read[3] == '"a message over the size limit (max_body_bytes) was dropped"'
    assert read[2] == "\ufffd\ufffd ok\r\n"
    assert read[4] == "tail"
    assert read[5] is None
