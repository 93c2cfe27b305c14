"""A server's warm-up: what toolsets prepare when ``tandem serve`` starts (the context toolset: its worker
processes with detect-secrets loaded, the token encoder), never for a one-shot command, and nothing it does may
disturb the stdio stream or what a call returns."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tandem import fork_server
from tandem.config import Settings
from tandem.core import Registry, Toolset, worker_processes
from tandem.toolsets.context.toolset import WARM_WORKERS
from tests.exact_tokens import tiktoken_count
from tests.live_processes import PARENT, live

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def _workers(pid: int) -> list[int]:
    """``pid``'s worker processes: spawned children, or the children of its fork server (multiprocessing's
    resource tracker is a child too, and not one)."""
    out = []
    for child in live(PARENT, pid):
        command = _command(child)
        if b"spawn_main" in command:
            out.append(child)
        elif b"multiprocessing.forkserver" in command:
            out.extend(live(PARENT, child))
    return out


def _fork_servers(pid: int) -> list[int]:
    return [child for child in live(PARENT, pid) if b"multiprocessing.forkserver" in _command(child)]


def _command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _serve(workspace: Path, warm_up: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tandem", "serve", "--toolsets", "context", "--workspace", str(workspace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TANDEM_WARM_UP": "true" if warm_up else "false", "TANDEM_LOG_REQUESTS": "false"},
    )


def _pack(proc: subprocess.Popen[str]) -> dict:
    assert proc.stdin is not None and proc.stdout is not None
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "pack_codebase", "arguments": {}}}
    for message in (INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"}, call):
        proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()
    replies = [json.loads(proc.stdout.readline()) for _ in range(2)]  # only JSON-RPC on stdout
    assert replies[0]["id"] == 1 and replies[1]["id"] == 2, replies
    return replies[1]["result"]


def _workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    for n in range(30):
        (workspace / "src" / f"m{n}.py").write_text(f'"""Module {n}."""\n\nVALUE = {n} * 7  # {tmp_path.name}\n')
    (workspace / "src" / "creds.py").write_text('password = "hunter2-is-not-a-good-one"\n')
    return workspace


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("warm_up", [True, False])
def test_a_server_starts_its_workers_ready_only_when_warming_up(tmp_path: Path, warm_up: bool) -> None:
    workspace = _workspace(tmp_path)
    proc = _serve(workspace, warm_up)
    try:
        expected = min(worker_processes.worker_count(), WARM_WORKERS)
        deadline = time.monotonic() + 30
        while warm_up and len(_workers(proc.pid)) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        if not warm_up:
            time.sleep(1.5)  # long enough for a warm-up to have started them
        started = _workers(proc.pid)
        assert len(started) == (expected if warm_up else 0), started
        # The fork server, started before the settings were read, is withdrawn when they want no warm-up.
        assert len(_fork_servers(proc.pid)) == (1 if warm_up and fork_server.available() else 0)
        result = _pack(proc)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(30) == 0
    assert not result.get("isError"), result
    stats = result["structuredContent"]
    assert stats["file_count"] == 30
    assert [entry["path"] for entry in stats["skipped"]] == ["src/creds.py"]
    packed = (workspace / ".tandem" / "packs" / f"{stats['pack_id']}.txt").read_text(encoding="utf-8")
    assert stats["total_tokens"] == tiktoken_count(packed)


def test_a_one_shot_pack_does_not_warm_up(tmp_path: Path) -> None:
    """``tandem pack`` is not a server: no warm-up (the command is over before one could pay off)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tandem.cli as c, sys; sys.argv = ['tandem', 'pack', '-o', 'out.xml']; "
            "import tandem.core.registry as r; r.Registry.start_warm_up = lambda *a: sys.exit('warm-up started'); "
            "c.main()",
        ],
        cwd=_workspace(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Packed 30 files" in done.stdout


def test_warm_ups_run_once_in_a_thread_and_a_failure_is_only_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []
    first, second = Toolset("first"), Toolset("second")

    @first.warm_up
    def fails(settings: Settings) -> None:
        ran.append("fails")
        raise RuntimeError("no model here")

    @second.warm_up
    def works(settings: Settings) -> None:
        ran.append(f"works in {settings.workspace.name}")

    registry = Registry([first, second])
    assert registry.start_warm_up(Settings(workspace=tmp_path, warm_up=False)) is None
    assert ran == []
    with caplog.at_level(logging.WARNING, logger="tandem.registry"):
        thread = registry.start_warm_up(Settings(workspace=tmp_path))
        assert thread is not None and thread.daemon
        thread.join(10)
    assert ran == ["fails", f"works in {tmp_path.name}"]  # the failure did not stop the next one
    assert "warm-up" in caplog.text and "no model here" in caplog.text


def test_worker_setups_run_in_every_worker_as_it_starts(tmp_path: Path) -> None:
    marker = tmp_path / "set-up"
    setup = functools.partial(Path.touch, marker)
    worker_processes.shutdown(wait=True)  # a pool started before this setup was known would not run it
    worker_processes.prepare_with(setup)
    try:
        worker_processes.start()
        assert worker_processes.started()
        worker_processes.submit(os.getpid).result(timeout=60)
        assert marker.exists()
    finally:
        worker_processes._setups.remove(setup)
        worker_processes.shutdown(wait=True)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_a_server_that_is_killed_takes_its_workers_with_it(tmp_path: Path, how: signal.Signals) -> None:
    """A server stopped by a signal never shuts its pool down: its workers must see it gone and end."""
    proc = _serve(_workspace(tmp_path), warm_up=True)
    deadline = time.monotonic() + 30
    while len(_workers(proc.pid)) < min(worker_processes.worker_count(), WARM_WORKERS) and time.monotonic() < deadline:
        time.sleep(0.1)
    started = _workers(proc.pid)
    assert started
    # and the fork server they were forked from, where there is one
    started += [child for child in live(PARENT, proc.pid) if b"multiprocessing.forkserver" in _command(child)]
    proc.send_signal(how)
    proc.wait(30)
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in started if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"workers left running: {alive}"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_what_a_worker_prints_goes_to_standard_error(tmp_path: Path) -> None:
    """A stdio server's standard output is its JSON-RPC stream, which its workers inherit: they print to standard
    error instead."""
    code = """
        import functools, os
        from tandem.core import worker_processes
        if __name__ == "__main__":
            worker_processes.prepare_with(functools.partial(print, "printed by a worker", flush=True))
            worker_processes.submit(os.getpid).result(timeout=60)
            worker_processes.shutdown(wait=True)
            print("printed by the parent")
    """
    script = tmp_path / "workers.py"
    script.write_text(textwrap.dedent(code))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "printed by the parent\n"
    assert "printed by a worker" in done.stderr
