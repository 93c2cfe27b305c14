"""Shared fixtures: real Tandem servers in subprocesses, and clients for every transport."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_TOOLSETS = "server,conformance"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True, scope="session")
def _own_user_directories(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The user's cache directory (Tandem's result cache, the parsed vocabulary) and configuration directory
    (trusted workspaces) of this run's own, for every test and every process a test starts: what earlier runs
    left there cannot decide what a test sees, and no test touches the real ones."""
    previous = {name: os.environ.get(name) for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME")}
    for name in previous:
        os.environ[name] = str(tmp_path_factory.mktemp(name.lower()))
    yield
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class ServerProcess:
    """A ``tandem serve --http`` subprocess on a free port; its stderr is kept for assertions."""

    def __init__(self, workspace: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tandem", "serve", "--http", "--port", "0", "--workspace", str(workspace), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._ready = threading.Event()
        self.url = ""
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(30) or not self.url:
            self.stop()
            raise RuntimeError("tandem did not start:\n" + "\n".join(self.lines))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                self._ready.set()
        self._ready.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _serve(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("ws"), "--toolsets", TEST_TOOLSETS, *args)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A stateful HTTP server: /mcp with sessions, /sse, /ws, /health."""
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="session")
def stateless_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An HTTP server whose /mcp runs stateless with JSON responses."""
    yield from _serve(tmp_path_factory, "--stateless")


def wait_until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
