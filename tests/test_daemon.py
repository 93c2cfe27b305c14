"""``tandem start``, ``stop`` and ``status`` as a user runs them: a real detached supervisor and server, a real
pid file and log, a server killed with SIGKILL and brought back, and a stop that loses nothing."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tandem.daemon import LOG_DAYS, DaemonFiles, rotating_log

CORPUS = Path(__file__).parent / "fixtures" / "catalog"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(CORPUS, target, ignore=shutil.ignore_patterns(".tandem"))
    return target


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TANDEM_", "MCP_"))}
    return {**clean, "HOME": str(home), "TANDEM_TOOLSETS": "server,catalog,conformance"}


@pytest.fixture
def files(workspace: Path) -> Iterator[DaemonFiles]:
    files = DaemonFiles(workspace / ".tandem")
    yield files
    # Whatever a test left running is stopped, the hard way if need be.
    state = files.read_state()
    pid = files.running_pid()
    for victim in (pid, state.get("server_pid")):
        if isinstance(victim, int):
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)


def tandem(workspace: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tandem", *args, "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def rpc(url: str, method: str, params: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}
    return httpx.post(f"{url}/", json=body, timeout=30).json()


def wait_for(condition: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to read its exit code.
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"


def test_start_status_crash_restart_and_stop(workspace: Path, env: dict[str, str], files: DaemonFiles) -> None:
    assert tandem(workspace, env, "status").returncode == 3
    started = tandem(workspace, env, "start", "--port", "0")
    assert started.returncode == 0, started.stderr
    state = files.read_state()
    url, supervisor, server = state["url"], state["supervisor_pid"], state["server_pid"]
    assert f"started at {url}" in started.stdout and files.running_pid() == supervisor
    assert files.pid.read_text().strip() == str(supervisor)
    assert httpx.get(f"{url}/health", timeout=10).json()["indexes"]["agents"] == 77

    again = tandem(workspace, env, "start")
    assert again.returncode == 0 and "already running" in again.stdout and files.read_state()["url"] == url

    assert rpc(url, "queryAgents", {"role": "backend_developer"})["result"]["agents"][0]["name"] == "backend-developer"
    shown = tandem(workspace, env, "status")
    assert shown.returncode == 0, shown.stdout
    assert f"running at {url}" in shown.stdout and "77 agents, 38 skills, 24 workflows" in shown.stdout
    assert "queries: 1;" in shown.stdout and "restarted 0 times" in shown.stdout
    as_json = json.loads(tandem(workspace, env, "status", "--json").stdout)
    assert as_json["health"]["status"] == "healthy" and as_json["metrics"]["queries"]["total"] == 1

    # The server dies as hard as a process can; the supervisor brings it back on the same URL.
    os.kill(server, signal.SIGKILL)
    restarted = wait_for(lambda: (s := files.read_state()).get("status") == "running" and s["server_pid"] != server)
    assert restarted
    state = files.read_state()
    assert state["url"] == url and state["restarts"] == 1 and state["last_exit"] == -signal.SIGKILL
    assert rpc(url, "getHealth", {})["result"]["indexes"]["agents"] == 77
    assert "restarted 1 time after a crash" in tandem(workspace, env, "status").stdout

    # Queries just before the stop are in the database after it: the shutdown flushed the query log.
    batch = [
        {"jsonrpc": "2.0", "method": "queryAgents", "params": {"capability": f"react{n}"}, "id": n} for n in range(40)
    ]
    assert len(httpx.post(f"{url}/", json=batch, timeout=30).json()) == 40
    stopped = tandem(workspace, env, "stop")
    assert stopped.returncode == 0 and f"stopped (pid {supervisor})" in stopped.stdout
    assert not files.pid.exists() and not files.state.exists()
    assert not alive(supervisor) and not alive(state["server_pid"])
    with contextlib.closing(sqlite3.connect(workspace / ".tandem" / "catalog.db")) as db:
        logged = db.execute("SELECT count(*) FROM agent_queries WHERE capability LIKE 'react%'").fetchone()[0]
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert logged == 40
    log = files.log.read_text()
    assert "exited (code -9)" in log and "SIGTERM received" in log and "listening on" in log
    assert "session manager shutting down" in log  # the server's own lines are in the log too
    assert tandem(workspace, env, "status").returncode == 3
    assert tandem(workspace, env, "stop").stdout.strip() == "tandem: not running"


def test_stop_lets_a_request_in_flight_finish(workspace: Path, env: dict[str, str], files: DaemonFiles) -> None:
    env = {**env, "TANDEM_STATELESS_HTTP": "true"}
    assert tandem(workspace, env, "start", "--port", "0").returncode == 0
    url = files.read_state()["url"]
    call = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 2}}, "id": 7}
    answers: list[httpx.Response] = []
    request = threading.Thread(
        target=lambda: answers.append(httpx.post(f"{url}/mcp", json=call, headers=MCP_HEADERS, timeout=30))
    )
    request.start()
    time.sleep(0.5)  # the call is in flight
    stopped = tandem(workspace, env, "stop")
    request.join(30)
    assert stopped.returncode == 0
    assert answers and answers[0].status_code == 200
    assert answers[0].json()["result"]["content"][0]["text"] == "slept 2.0s"
    assert files.running_pid() is None


def test_a_stale_pid_file_is_not_a_running_daemon(workspace: Path, env: dict[str, str], files: DaemonFiles) -> None:
    files.data_path.mkdir(parents=True)
    # What a supervisor killed with SIGKILL (or a power cut) leaves: a pid file nobody holds the lock on.
    files.pid.write_text(f"{os.getpid()}\n")
    files.state.write_text(json.dumps({"url": "http://127.0.0.1:1", "status": "running"}))
    assert tandem(workspace, env, "status").returncode == 3
    assert not files.pid.exists() and not files.state.exists()
    started = tandem(workspace, env, "start", "--port", "0")
    assert started.returncode == 0, started.stderr
    state = files.read_state()
    supervisor, server = state["supervisor_pid"], state["server_pid"]
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not alive(supervisor))
    assert files.pid.exists()  # left behind, but no longer locked
    # The lock goes when the last of the supervisor's threads has exited, a moment after its main thread.
    wait_for(lambda: files.running_pid() is None)
    assert not files.pid.exists() and not files.state.exists()
    # Its server does not live on as an orphan holding the port: it is stopped with its supervisor.
    wait_for(lambda: not alive(server))
    restarted = tandem(workspace, env, "start", "--port", state["url"].rsplit(":", 1)[1])
    assert restarted.returncode == 0, restarted.stderr
    assert tandem(workspace, env, "stop").returncode == 0


def test_without_auto_restart_a_crash_ends_the_daemon(workspace: Path, env: dict[str, str], files: DaemonFiles) -> None:
    env = {**env, "MCP_AUTO_RESTART": "false"}
    assert tandem(workspace, env, "start", "--port", "0").returncode == 0
    state = files.read_state()
    assert state["auto_restart"] is False
    os.kill(state["server_pid"], signal.SIGKILL)
    wait_for(lambda: not alive(state["supervisor_pid"]))
    assert files.running_pid() is None and not files.pid.exists()
    assert "auto_restart is off" in files.log.read_text()


def test_a_server_that_cannot_start_is_reported_with_its_log(
    workspace: Path, env: dict[str, str], files: DaemonFiles
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        failed = tandem(workspace, env, "start", "--port", str(taken.getsockname()[1]), "--timeout", "60")
    assert failed.returncode == 1
    assert "exited" in failed.stderr and "before it was healthy" in failed.stderr
    assert "address already in use" in failed.stderr.lower()  # the end of the log says why
    assert files.running_pid() is None and not files.pid.exists()


def test_bad_settings_stop_start_before_anything_runs(workspace: Path, env: dict[str, str]) -> None:
    failed = tandem(workspace, {**env, "MCP_PORT": "seventy"}, "start")
    assert failed.returncode == 2 and "set by MCP_PORT" in failed.stderr
    assert not (workspace / ".tandem" / "tandem.pid").exists()


def test_the_log_rotates_daily_and_keeps_seven_days(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "tandem.log"
    handler = rotating_log(log)
    try:
        assert handler.when == "MIDNIGHT" and handler.backupCount == LOG_DAYS == 7
        for day in range(1, 10):  # nine older days on disk
            log.with_name(f"tandem.log.2026-11-{day:02d}").write_text(f"day {day}\n")
        logger = logging.Logger("rotation-test")
        logger.addHandler(handler)
        logger.info("before midnight")
        handler.doRollover()
        logger.info("after midnight")
    finally:
        handler.close()
    kept = sorted(p.name for p in log.parent.iterdir() if p.name != "tandem.log")
    assert len(kept) == 7
    assert "tandem.log.2026-11-01" not in kept and "tandem.log.2026-11-09" in kept
    assert log.read_text() == "after midnight\n"
    rolled = [p for p in log.parent.iterdir() if p.read_text() == "before midnight\n"]
    assert len(rolled) == 1 and rolled[0].name.startswith("tandem.log.")


def test_start_serves_the_profile_it_is_given(workspace: Path, env: dict[str, str], files: DaemonFiles) -> None:
    """``tandem start --profile coder``: the supervisor passes it on, so the daemon serves the coder's toolsets."""
    env = {k: v for k, v in env.items() if k != "TANDEM_TOOLSETS"}
    started = tandem(workspace, env, "start", "--port", "0", "--profile", "coder")
    try:
        assert started.returncode == 0, started.stderr
        url = files.read_state()["url"]
        served = httpx.get(f"{url}/health", timeout=10).json()["toolsets"]
        assert {"workspace", "code", "git"} <= set(served) and "context" not in served and "gateway" not in served
        # A restart after a crash comes back with the same profile.
        server = files.read_state()["server_pid"]
        os.kill(server, signal.SIGKILL)
        assert wait_for(lambda: (s := files.read_state()).get("status") == "running" and s["server_pid"] != server)
        assert httpx.get(f"{url}/health", timeout=10).json()["toolsets"] == served
    finally:
        assert tandem(workspace, env, "stop").returncode == 0
