"""The servers under test as subprocesses: Tandem and the reference, over HTTP (one process per mode for the whole
run) or stdio (one process per cell), and the CPU time each one uses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

from rawhttp import BODY_LIMIT

REFERENCE_SCRIPT = Path(__file__).with_name("reference_server.py")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
_BANNER = re.compile(r"listening on (http://\S+)|serving MCP on stdio")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_TRACEBACK = ("Traceback ", "During handling of the above exception", "The above exception was the direct cause")


def tandem_command(workspace: Path, *args: str) -> list[str]:
    """``tandem serve`` as shipped, with the conformance toolset (for ``add``) and warning-level logs."""
    return [
        sys.executable,
        "-m",
        "tandem",
        "serve",
        "--toolsets",
        "conformance",
        "--log-level",
        "warning",
        "--workspace",
        str(workspace),
        *args,
    ]


def reference_command(mode: str, *args: str) -> list[str]:
    return [sys.executable, str(REFERENCE_SCRIPT), "--mode", mode, *args]


def _environment() -> dict[str, str]:
    """This environment without ``TANDEM_*`` settings, so that Tandem runs on its defaults."""
    return {name: value for name, value in os.environ.items() if not name.startswith("TANDEM_")}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by process ``pid``, all its threads together (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def stderr_summary(lines: list[str]) -> list[str]:
    """A server's stderr beyond its start-up banner, as "<count>x <line>" for each distinct unindented line (log
    records and the exception line that ends each traceback)."""
    counts = Counter(
        line.strip()
        for line in lines
        if line.strip() and not line[0].isspace() and not _BANNER.search(line) and not line.startswith(_TRACEBACK)
    )
    return [f"{count}x {line}" for line, count in counts.items()]


class HttpServer:
    """A server subprocess that prints ``listening on http://HOST:PORT`` to stderr once bound."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.lines: list[str] = []
        self.url = ""
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
        )
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(START_TIMEOUT_S) or not self.url:
            self.stop()
            raise RuntimeError(f"{name} did not start:\n" + "\n".join(self.lines))

    @property
    def pid(self) -> int:
        return self.process.pid

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            match = _BANNER.search(line)
            if match and match.group(1):
                self.url = match.group(1)
                self._ready.set()
        self._ready.set()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.asynccontextmanager
async def stdio_server(command: list[str], lines: list[str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """A stdio server for one cell; when it is done, its stderr is appended to ``lines``."""
    with tempfile.TemporaryFile() as stderr:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            limit=BODY_LIMIT,
            env=_environment(),
        )
        try:
            yield process
        finally:
            assert process.stdin is not None
            process.stdin.close()  # a stdio server ends when its stdin does
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
            stderr.seek(0)
            lines.extend(stderr.read().decode(errors="replace").splitlines())
