"""The worker pool's fork server: one process, started once, that imports what the workers need and forks every
worker from itself, so that a worker starts with those imports done. A spawned worker pays a Python start-up and
the imports itself (detect-secrets, Tandem's scanner, their compiled regexes: some 0.3 s of CPU on each start),
and a one-shot ``tandem pack`` would wait for them.

Standard library only, so that a process can start it before its own imports: ``tandem pack`` does, first thing,
and the server imports on another CPU while the command imports the rest. Where the platform has no fork server
(Windows), workers are spawned and the modules imported in each as it starts.

The server is ``multiprocessing``'s own: single-threaded (forking it is safe, unlike forking a process that runs an
event loop and threads), it ends when the process that started it ends, and its workers are that process's to
stop, as spawned ones are.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import multiprocessing.util
import os
import threading
from collections.abc import Callable

_lock = threading.Lock()
_modules: list[str] = []
_started_by = 0
"""The pid of the process that started the fork server (a forked child does not have its parent's)."""
_failed = False
"""Whether a start failed (no place for its socket, no process to spare): workers are spawned from then on."""


def _with_safe_path(flags: Callable[[], list[str]]) -> Callable[[], list[str]]:
    """``flags`` (the interpreter options multiprocessing starts its processes with) plus ``-P``: the fork server
    and spawned workers start as ``python -c ...``, which puts their working directory (a workspace) first on the
    import path, so a workspace's ``anyio.py`` or ``tandem/`` would be imported, and run, instead of the real one.
    (Python 3.11's fork server ignores the import path it is handed; ``-P`` keeps the directory out.)"""
    if getattr(flags, "safe_path", False):
        return flags

    def with_safe_path() -> list[str]:
        options = flags()
        return options if "-P" in options else [*options, "-P"]

    with_safe_path.safe_path = True  # type: ignore[attr-defined]
    return with_safe_path


multiprocessing.util._args_from_interpreter_flags = _with_safe_path(  # type: ignore[attr-defined]
    multiprocessing.util._args_from_interpreter_flags  # type: ignore[attr-defined]
)


def available() -> bool:
    """Whether this platform has a fork server (Linux and macOS do; Windows does not) and it has not failed to
    start."""
    return not _failed and "forkserver" in multiprocessing.get_all_start_methods()


def context() -> multiprocessing.context.BaseContext:
    """The context worker pools are made with: the fork server's where there is one, else ``spawn``."""
    return multiprocessing.get_context("forkserver" if available() else "spawn")


def preload(module: str) -> None:
    """Have ``module`` imported in the fork server, if it has not started yet, and in each worker as it starts
    (at no cost in one forked from a server that imported it). Its import should prepare a worker: load what the
    worker's first task would otherwise load."""
    with _lock:
        if module not in _modules:
            _modules.append(module)


def modules() -> tuple[str, ...]:
    """What ``preload`` was given, in order."""
    with _lock:
        return tuple(_modules)


def start() -> bool:
    """Start the fork server now, if the platform has one and this process has not started it; returns at once
    (the server imports in its own process, and forks the first worker once it has). Whether one runs."""
    global _started_by, _failed
    if not available():
        return False
    from multiprocessing import forkserver

    with _lock:
        forkserver.set_forkserver_preload(list(_modules))  # read by the server when it starts, only then
        try:
            forkserver.ensure_running()
        except OSError:
            _failed = True
            return False
        _started_by = os.getpid()
    return True


def stop() -> None:
    """End the fork server this process started, at once (a one-shot command about to exit whose workers are
    gone: a server still importing would otherwise outlive it until its imports are done, holding the command's
    standard output and error open, and whoever reads them waiting)."""
    global _started_by
    if not running():
        return
    import signal
    from multiprocessing import forkserver

    server = forkserver._forkserver
    with _lock, server._lock:
        _started_by = 0
        pid = getattr(server, "_forkserver_pid", None)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        # What multiprocessing does on finding its server dead: the next worker starts a new one.
        with contextlib.suppress(OSError, TypeError):
            os.close(server._forkserver_alive_fd)
        server._forkserver_address = server._forkserver_alive_fd = server._forkserver_pid = None


def withdraw() -> None:
    """Stop the fork server started ahead of need (``tandem/__main__.py`` does for a server's warm-up) and forget
    what it was to preload: a server whose settings warm nothing up starts workers, if ever, as it would have."""
    stop()
    with _lock:
        _modules.clear()


def running() -> bool:
    """Whether this process started the fork server (workers start from it in milliseconds)."""
    return _started_by == os.getpid()
