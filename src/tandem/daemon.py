"""Tandem as a background daemon: ``tandem start``, ``stop`` and ``status``.

``tandem start`` launches a detached supervisor (``tandem supervise``, a new session with no terminal). The
supervisor holds an exclusive lock on the pid file for as long as it lives, so a pid file left by a machine crash
is never mistaken for a running daemon; it runs ``tandem serve --http`` as its child, writes what the child prints
into a log file rotated at midnight and kept for 7 days, restarts the child when it crashes (``auto_restart``,
with a growing pause), and on SIGTERM asks the child to stop: uvicorn finishes the requests in flight, the catalog
flushes its query log and closes its database, then the pid and state files are removed.

Files, all in the data directory (``.tandem/`` of the workspace unless configured):

    tandem.pid       the supervisor's pid (locked while it runs)
    daemon.json      url, pids, restarts, state: what ``tandem status`` shows
    logs/tandem.log  the server's log, tandem.log.YYYY-MM-DD for the 7 days before
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path
from typing import Any

import httpx2 as httpx

from tandem.core import write_atomic
from tandem.core.commands import tandem_argv

PID_FILE = "tandem.pid"
STATE_FILE = "daemon.json"
LOG_FILE = Path("logs") / "tandem.log"
LOG_DAYS = 7
STOP_GRACE_S = 20.0
"""How long the server gets to finish its requests and flush before it is killed."""
READY_TIMEOUT_S = 60.0
RESTART_PAUSE_S = (0.5, 30.0)
"""The pause before restarting a crashed server: doubles with every quick crash, from the first to the second."""
STABLE_AFTER_S = 60.0
"""A server that ran this long before crashing counts as a fresh start: the pause goes back to the first."""
MAX_QUICK_CRASHES = 5
_BANNER = re.compile(r"listening on (http://\S+)")
SUPERVISOR_ENV = "TANDEM_SUPERVISOR_PID"
"""Set in the server's environment by its supervisor: the server stops when that process is gone."""
_PR_SET_PDEATHSIG = 1

logger = logging.getLogger("tandem.daemon")


@dataclass(frozen=True)
class DaemonFiles:
    """Where the daemon of one data directory keeps its pid, state and log."""

    data_path: Path

    @property
    def pid(self) -> Path:
        return self.data_path / PID_FILE

    @property
    def state(self) -> Path:
        return self.data_path / STATE_FILE

    @property
    def log(self) -> Path:
        return self.data_path / LOG_FILE

    def running_pid(self) -> int | None:
        """The supervisor's pid while one holds the pid file's lock; ``None`` otherwise (a stale file is removed)."""
        try:
            fd = os.open(self.pid, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):  # no pid file, or no data directory to hold one
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.read(fd, 64).decode(errors="replace").strip()
                return int(text) if text.isdigit() else None
            # Nobody holds it: a supervisor that died without cleaning up (SIGKILL, a power cut).
            with contextlib.suppress(FileNotFoundError):
                self.pid.unlink()
            with contextlib.suppress(FileNotFoundError):
                self.state.unlink()
            return None
        finally:
            os.close(fd)

    def read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def rotating_log(path: Path) -> TimedRotatingFileHandler:
    """The daemon's log: a new file at midnight, the last ``LOG_DAYS`` days kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = TimedRotatingFileHandler(path, when="midnight", backupCount=LOG_DAYS, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def fetch_json(url: str, path: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """``GET url+path`` as JSON; raises ``httpx.HTTPError`` or ``ValueError`` when that fails."""
    response = httpx.get(f"{url}{path}", timeout=timeout_s)
    response.raise_for_status()
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError(f"{path} did not answer a JSON object")
    return data


def die_with_supervisor() -> None:
    """In a server started by a supervisor: have the kernel send SIGTERM (a graceful stop) when the supervisor dies.

    Without it a supervisor killed with SIGKILL would leave its server running, holding the port and the database,
    and no ``tandem stop`` could find it. Linux only (``prctl``); elsewhere the server outlives a killed supervisor."""
    expected = os.environ.pop(SUPERVISOR_ENV, None)
    if not expected or not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("could not ask to be stopped with the supervisor: %s", os.strerror(ctypes.get_errno()))
        return
    if str(os.getppid()) != expected:  # the supervisor died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


# -- the supervisor ------------------------------------------------------------------------------------------------


class Supervisor:
    """Runs ``tandem serve --http`` and keeps it running; one per data directory (the pid file's lock says so)."""

    def __init__(self, files: DaemonFiles, serve_args: list[str], *, auto_restart: bool, workspace: Path) -> None:
        self.files = files
        self.serve_args = serve_args
        self.auto_restart = auto_restart
        self.workspace = workspace
        self.stopping = threading.Event()
        self.child: subprocess.Popen[str] | None = None
        self.state: dict[str, Any] = {}
        self._log = logging.Logger("tandem.daemon.file")
        self._log.addHandler(rotating_log(files.log))
        self._log_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pid_fd: int | None = None
        self._signal: int | None = None
        self._stop_asked: float | None = None

    def say(self, level: str, message: str) -> None:
        """One line of the supervisor's own in the log, in the server's format."""
        now = time.time()
        stamp = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))},{int(now % 1 * 1000):03d}"
        with self._log_lock:
            self._log.info("%s %s tandem.supervisor: %s", stamp, level, message)

    def run(self) -> int:
        if not self._lock_pid_file():
            return 1
        try:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            return self._supervise()
        except Exception as exc:  # the log is the only place anyone will see it
            self.say("ERROR", f"supervisor failed: {type(exc).__name__}: {exc}")
            if self.child is not None and self.child.poll() is None:
                self.child.kill()
            return 1
        finally:
            self._release()

    def _lock_pid_file(self) -> bool:
        self.files.data_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.files.pid, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self.say("ERROR", f"another supervisor holds {self.files.pid}; this one exits")
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._pid_fd = fd
        return True

    def _release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.files.state.unlink()
        if self._pid_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self.files.pid.unlink()
            os.close(self._pid_fd)  # the lock goes with it: from here on nobody sees this daemon running
            self._pid_fd = None
        for handler in self._log.handlers:
            handler.close()

    def _on_signal(self, number: int, _frame: object) -> None:
        # Only what is safe in a signal handler; the main loop logs it and writes the state.
        if self.stopping.is_set():
            return
        self._signal, self._stop_asked = number, time.monotonic()
        self.stopping.set()
        child = self.child
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)

    def _noticed_stop(self) -> None:
        if self._signal is not None:
            self.say("INFO", f"{signal.Signals(self._signal).name} received: stopping the server")
            self._signal = None
            self._write_state(status="stopping")

    def _write_state(self, **changes: Any) -> None:
        with self._state_lock:
            self.state.update(changes)
            text = json.dumps(self.state, indent=2) + "\n"
            write_atomic(self.files.data_path, self.files.state, text.encode())

    def _supervise(self) -> int:
        self._write_state(
            status="starting",
            supervisor_pid=os.getpid(),
            server_pid=None,
            url=None,
            workspace=str(self.workspace),
            log=str(self.files.log),
            started_at=time.time(),
            restarts=0,
            auto_restart=self.auto_restart,
            last_exit=None,
        )
        self.say("INFO", f"supervisor {os.getpid()} starting the server: {' '.join(self.serve_args)}")
        pause, quick_crashes, ever_ready = RESTART_PAUSE_S[0], 0, False
        while True:
            started = time.monotonic()
            code, ready = self._run_child()
            ran_s = time.monotonic() - started
            ever_ready = ever_ready or ready
            if self.stopping.is_set():
                self.say("INFO", f"the server stopped (exit code {code}); supervisor exits")
                return 0
            self._write_state(status="restarting", server_pid=None, last_exit=code)
            if not ever_ready:
                self.say("ERROR", f"the server exited (code {code}) before it was listening; not restarted")
                return 1
            if not self.auto_restart:
                self.say("ERROR", f"the server exited (code {code}); auto_restart is off, supervisor exits")
                return 1
            if ran_s >= STABLE_AFTER_S:
                pause, quick_crashes = RESTART_PAUSE_S[0], 0
            quick_crashes += 1
            if quick_crashes > MAX_QUICK_CRASHES:
                self.say("ERROR", f"the server crashed {quick_crashes - 1} times in a row; giving up")
                return 1
            self.say("WARNING", f"the server exited (code {code}) after {ran_s:.1f} s; restarting in {pause:g} s")
            if self.stopping.wait(pause):
                self._noticed_stop()
                self.say("INFO", "stopped while waiting to restart the server; supervisor exits")
                return 0
            pause = min(pause * 2, RESTART_PAUSE_S[1])
            self._write_state(restarts=self.state["restarts"] + 1)

    def _run_child(self) -> tuple[int, bool]:
        """One run of the server until it exits: its exit code and whether it ever listened."""
        args = list(self.serve_args)
        if url := self.state.get("url"):
            # A restart comes back on the port clients already know (the first run may have picked it: --port 0).
            args += ["--port", url.rsplit(":", 1)[1]]
        self.child = subprocess.Popen(
            tandem_argv(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env={**os.environ, SUPERVISOR_ENV: str(os.getpid())},
        )
        ready = threading.Event()
        relay = threading.Thread(target=self._relay, args=(self.child, ready), daemon=True)
        relay.start()
        self._write_state(status="starting", server_pid=self.child.pid, server_started_at=time.time())
        if self.stopping.is_set():  # a signal that came while the child was being spawned
            self.child.send_signal(signal.SIGTERM)
        killed = False
        while True:
            try:
                code = self.child.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                self._noticed_stop()
                overdue = self._stop_asked is not None and time.monotonic() - self._stop_asked >= STOP_GRACE_S
                if overdue and not killed:
                    self.say("ERROR", f"the server did not stop within {STOP_GRACE_S:g} s; killed")
                    self.child.kill()
                    killed = True
        self._noticed_stop()
        relay.join(timeout=5)
        return code, ready.is_set()

    def _relay(self, child: subprocess.Popen[str], ready: threading.Event) -> None:
        """Copy the server's stderr into the log; the banner's URL goes into the state file."""
        assert child.stderr is not None
        for line in child.stderr:
            text = line.rstrip("\n")
            with self._log_lock:
                self._log.info("%s", text)
            match = _BANNER.search(text)
            if match and not ready.is_set():
                ready.set()
                if not self.stopping.is_set():
                    self._write_state(status="running", url=match.group(1))


# -- what the commands do --------------------------------------------------------------------------------------------


class DaemonError(Exception):
    """A daemon command could not do what it was asked; the message says why."""


def start(files: DaemonFiles, supervise_args: list[str], timeout_s: float = READY_TIMEOUT_S) -> dict[str, Any]:
    """Launch a detached supervisor and wait until its server answers ``/health``; the state file's contents.

    Raises ``DaemonError`` (with the end of the log) when it is not healthy within ``timeout_s``."""
    files.data_path.mkdir(parents=True, exist_ok=True)
    log_size = files.log.stat().st_size if files.log.exists() else 0
    supervisor = subprocess.Popen(
        tandem_argv("supervise", *supervise_args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # no terminal: closing it, or Ctrl-C in it, does not reach the daemon
        close_fds=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = supervisor.poll()
        state = files.read_state()
        if state.get("supervisor_pid") == supervisor.pid and state.get("status") == "running" and state.get("url"):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                health = fetch_json(state["url"], "/health", timeout_s=2.0)
                return {**state, "health": health}
        if code is not None:
            raise DaemonError(f"the daemon exited (code {code}) before it was healthy{_log_tail(files, log_size)}")
        time.sleep(0.05)
    raise DaemonError(f"the daemon was not healthy within {timeout_s:g} s{_log_tail(files, log_size)}")


def stop(files: DaemonFiles, timeout_s: float = STOP_GRACE_S + 10) -> int | None:
    """SIGTERM to the supervisor and wait for it to be gone; its pid, or ``None`` when none was running.

    Raises ``DaemonError`` when it outlives ``timeout_s`` (then it and its server are killed)."""
    pid = files.running_pid()
    if pid is None:
        return None
    state = files.read_state()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # The lock goes first (the supervisor's last act); "stopped" means the process is gone too.
        if files.running_pid() is None and not _alive(pid):
            return pid
        time.sleep(0.05)
    for victim in (state.get("server_pid"), pid):
        if isinstance(victim, int):
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
    raise DaemonError(f"the daemon (pid {pid}) did not stop within {timeout_s:g} s; it was killed")


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs; a zombie (exited, waiting for its parent to reap it) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): os.kill said it exists
    return stat.rpartition(")")[2].split()[0] != "Z"


def status(files: DaemonFiles) -> dict[str, Any] | None:
    """The state file plus the server's ``/health`` and ``/metrics`` (or why they failed); ``None`` when stopped."""
    pid = files.running_pid()
    if pid is None:
        return None
    state = {**files.read_state(), "supervisor_pid": pid}
    url = state.get("url")
    if not url or state.get("status") != "running":
        return {**state, "problem": f"the server is {state.get('status', 'starting')}"}
    try:
        return {**state, "health": fetch_json(url, "/health"), "metrics": fetch_json(url, "/metrics")}
    except (httpx.HTTPError, ValueError) as exc:
        return {**state, "problem": f"{url} does not answer: {type(exc).__name__}: {exc}"}


def unhealthy(report: dict[str, Any] | None) -> str | None:
    """Why ``status()``'s report is not a healthy daemon ("stopped", a problem, the health status); None if it is."""
    if report is None:
        return "stopped"
    if "problem" in report:
        return str(report["problem"])
    health = report["health"].get("status")
    return None if health == "healthy" else f"health is {health}"


def _log_tail(files: DaemonFiles, since: int, lines: int = 15) -> str:
    try:
        with files.log.open("rb") as log:
            log.seek(since)
            tail = deque(log.read().decode(errors="replace").splitlines(), maxlen=lines)
    except OSError:
        return ""
    return f"; the end of {files.log}:\n  " + "\n  ".join(tail) if tail else ""


def summary(report: dict[str, Any]) -> list[str]:
    """``tandem status`` as lines of text."""
    lines = [
        f"running at {report.get('url') or '(no url yet)'}: supervisor pid {report['supervisor_pid']}, "
        f"server pid {report.get('server_pid')}",
        f"workspace {report.get('workspace')}; log {report.get('log')}",
    ]
    started = report.get("started_at")
    uptime = _duration(time.time() - started) if isinstance(started, (int, float)) else "?"
    restarts = report.get("restarts", 0)
    lines.append(f"up {uptime}; restarted {restarts} time{'s' if restarts != 1 else ''} after a crash")
    if "problem" in report:
        lines.append(f"problem: {report['problem']}")
        return lines
    health, metrics = report["health"], report["metrics"]
    lines.append(f"health: {health.get('status')}; toolsets {', '.join(health.get('toolsets', []))}")
    if indexes := health.get("indexes"):
        counts = ", ".join(f"{value} {name}" for name, value in indexes.items())
        cache = health.get("cache", {})
        lines.append(f"catalog: {counts}; answer cache hit rate {cache.get('hit_rate', 0):.0%}")
    if performance := metrics.get("performance"):
        queries = metrics.get("queries", {})
        lines.append(
            f"queries: {queries.get('total', 0)}; p50 {performance.get('p50_query_time_ms', 0)} ms, "
            f"p95 {performance.get('p95_query_time_ms', 0)} ms, p99 {performance.get('p99_query_time_ms', 0)} ms"
        )
    server = metrics.get("server", {})
    lines.append(f"MCP sessions open: {server.get('sessions', 0)}")
    return lines


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s"
