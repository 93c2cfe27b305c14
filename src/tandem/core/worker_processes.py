"""CPU-bound work spread over worker processes, for tools that parse thousands of files (threads share one GIL,
and parsers such as ast-grep's hold it). The pool starts on first use and lives as long as the server. Its
workers are forked from ``tandem.fork_server`` (a single-threaded process that has imported what they need:
forking this one, which runs an event loop and threads, would be unsafe), or spawned where there is no fork
server; either way a worker runs with the environment and working directory its pool was made with.

A worker that dies takes only its own call down: the call gets a ``ToolError`` and the next one gets a new pool.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import anyio

from tandem import fork_server
from tandem.core.errors import ToolError

T = TypeVar("T")
MAX_WORKERS = 8

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_owners: weakref.WeakKeyDictionary[Future[Any], ProcessPoolExecutor] = weakref.WeakKeyDictionary()
"""The pool each submitted call went to (a broken one is discarded, not whichever pool is current by then)."""
_setups: list[Callable[[], None]] = []
"""What each worker process runs as it starts (see ``prepare_with``)."""


def worker_count() -> int:
    """How many worker processes the pool runs: one per CPU this process may use, at most ``MAX_WORKERS``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            fork_server.start()
            _pool = ProcessPoolExecutor(
                worker_count(),
                mp_context=fork_server.context(),
                initializer=_set_up,
                initargs=(tuple(_setups), fork_server.modules(), dict(os.environ), os.getcwd()),
            )
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def _set_up(
    setups: tuple[Callable[[], None], ...], modules: tuple[str, ...], environ: dict[str, str], cwd: str
) -> None:
    """A worker process's start: its standard output is its standard error (it inherited the server's, which on
    stdio is the JSON-RPC stream: nothing a worker prints may reach it); its environment and working directory are
    its pool's (a forked worker has the fork server's, from when that started); it ends when the process that
    started it ends, however that ends (a server killed has no chance to stop its pool, and a worker waits on its
    work queue forever); then the preloaded modules are imported (already, when it was forked from the server) and
    the setups run."""
    sys.stdout.flush()
    os.dup2(2, 1)
    if os.environ != environ:
        os.environ.clear()
        os.environ.update(environ)
    with contextlib.suppress(OSError):
        os.chdir(cwd)
    parent = multiprocessing.parent_process()
    if parent is not None:

        def watch() -> None:
            multiprocessing.connection.wait([parent.sentinel])  # readable once the parent is gone
            from tandem.core import result_cache

            result_cache.flush_all(timeout=1.0)  # what it has found is kept for the next process, briefly
            os._exit(1)

        threading.Thread(target=watch, name="tandem-parent-watch", daemon=True).start()
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # a preload only saves a later call time; that call will meet the error itself
            continue
    for fn in setups:
        try:
            fn()
        except Exception:
            continue


def preload(module: str) -> None:
    """Have every worker import ``module`` as it starts, and the fork server once, if it has not started yet
    (see ``tandem.fork_server.preload``): what its first task would otherwise import or compile."""
    fork_server.preload(module)


def preloaded() -> tuple[str, ...]:
    """The modules every worker imports as it starts (``preload``)."""
    return fork_server.modules()


def prepare_with(fn: Callable[[], None]) -> None:
    """Have every worker process started from now on run ``fn()`` (a module-level function, as it must pickle)
    first: an import or a cache a call would otherwise pay for on its first task in each process."""
    with _lock:
        if fn not in _setups:
            _setups.append(fn)


def start(count: int | None = None) -> None:
    """Start ``count`` worker processes (every one the pool may run, when ``None``) now rather than on first use
    (a server's warm-up); returns at once. The others start when work needs them."""
    pool = _get_pool()
    wanted = worker_count() if count is None else min(count, worker_count())

    def start_them() -> None:
        with contextlib.suppress(RuntimeError, BrokenProcessPool):  # shut down meanwhile
            for _ in range(wanted):
                pool.submit(os.getpid)  # with no worker idle, each submission starts one

    # In a thread: starting a worker from the fork server waits until the server has imported what it preloads.
    threading.Thread(target=start_them, name="tandem-worker-start", daemon=True).start()


def started() -> bool:
    """Whether workers are running or start at little cost: the pool runs, or its fork server does (a spawned
    worker costs a Python start-up and its imports)."""
    return _pool is not None or fork_server.running()


def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Start ``fn(*args)`` in a worker process (``fn`` and its arguments must pickle: a module-level function)."""
    pool = _get_pool()
    try:
        future = pool.submit(fn, *args)
    except BrokenProcessPool:
        _discard(pool)
        pool = _get_pool()
        future = pool.submit(fn, *args)
    _owners[future] = pool
    return future


async def result(future: Future[T]) -> T:
    """Wait for a submitted call without blocking the event loop; a cancelled caller cancels it if not started."""
    try:
        return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)
    except BrokenProcessPool:
        if (pool := _owners.get(future)) is not None:
            _discard(pool)  # that pool only: another thread may have made a healthy one since
        raise ToolError("a worker process died during this call (the input may crash the parser)") from None
    finally:
        future.cancel()  # a no-op once it finished; spares the pool work nobody waits for


@contextlib.contextmanager
def in_order(
    calls: Sequence[Callable[[], T]], run_sync: Callable[[Callable[[], T]], Awaitable[T]]
) -> Iterator[Iterator[Awaitable[T]]]:
    """The results of ``calls`` to await in their order: from worker processes, every call started at once, when
    there are more than two calls and more than one worker; else one after another through ``run_sync`` (a worker
    thread, e.g. ``CallContext.run_sync``). Calls not yet started when the block is left (an early ``break``) are
    cancelled. Each call must pickle: a ``functools.partial`` of a module-level function."""
    futures: list[Future[T]] = []
    outcomes: Iterator[Awaitable[T]]
    if len(calls) > 2 and worker_count() > 1:
        futures = [submit(call) for call in calls]
        outcomes = (result(future) for future in futures)
    else:
        outcomes = (run_sync(call) for call in calls)
    try:
        yield outcomes
    finally:
        for future in futures:
            future.cancel()


def shutdown(wait: bool = False) -> None:
    """Stop the pool's processes (the server calls this at exit; the next use starts a new pool). ``wait`` until
    they are gone: a process about to ``os._exit`` must, or its workers, still holding the pipe they read their
    work from, wait on it forever."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)
