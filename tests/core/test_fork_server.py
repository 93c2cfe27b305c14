"""Worker processes forked from a fork server that imported what they need: the imports happen once, in the
server, before any worker starts; a worker still runs with its pool's environment and working directory (not
the server's, from when it started); ``tandem pack`` starts the server first thing, only when it will scan."""

from __future__ import annotations

import ast
import functools
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

import tandem.__main__ as entry
from tandem import fork_server
from tandem.core import ToolError, secret_engine, tokens, worker_processes

needs_fork_server = pytest.mark.skipif(not fork_server.available(), reason="no fork server on this platform")


@needs_fork_server
def test_workers_start_with_what_the_server_imported_once(tmp_path: Path) -> None:
    (tmp_path / "probe_preload.py").write_text("import os\nIMPORTED_IN = os.getpid()\n")
    script = tmp_path / "workers.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            from tandem.core import worker_processes

            def where():
                import probe_preload
                return os.getpid(), probe_preload.IMPORTED_IN

            if __name__ == "__main__":
                worker_processes.preload("probe_preload")
                futures = [worker_processes.submit(where) for _ in range(40)]
                print(sorted({future.result(timeout=60) for future in futures}))
                print("probe_preload" in sys.modules)
                worker_processes.shutdown(wait=True)
            """
        )
    )
    # On the import path through the environment: the fork server imports nothing from its working directory.
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr
    answers, imported_here = done.stdout.splitlines()
    pairs = ast.literal_eval(answers)  # (worker pid, pid the module was imported in) pairs
    workers = {worker for worker, _ in pairs}
    imported_in = {pid for _, pid in pairs}
    assert len(workers) >= 1 and len(imported_in) == 1  # every worker has the one import, from before it was forked
    assert not imported_in & workers and os.getpid() not in imported_in
    assert imported_here == "False"  # and the process that asked never imported it


def test_a_worker_has_its_pools_environment_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork server has the environment and directory of when it started (here: whichever test started it);
    a worker has those of when its pool was made, as a spawned one would."""
    worker_processes.start(1)  # the server (where there is one) runs before the change
    worker_processes.shutdown(wait=True)
    monkeypatch.setenv("TANDEM_TEST_POOL_MARK", tmp_path.name)
    monkeypatch.chdir(tmp_path)
    try:
        assert worker_processes.submit(functools.partial(os.getenv, "TANDEM_TEST_POOL_MARK")).result(60) == (
            tmp_path.name
        )
        assert worker_processes.submit(os.getcwd).result(60) == str(tmp_path)
    finally:
        worker_processes.shutdown(wait=True)


@needs_fork_server
def test_a_worker_sees_no_variable_its_pool_did_not_have(tmp_path: Path) -> None:
    script = tmp_path / "workers.py"
    script.write_text(
        textwrap.dedent(
            """
            import functools, os
            from tandem import fork_server
            from tandem.core import worker_processes

            if __name__ == "__main__":
                os.environ["TANDEM_TEST_GONE"] = "1"
                fork_server.start()  # the server has it
                del os.environ["TANDEM_TEST_GONE"]
                print(worker_processes.submit(functools.partial(os.getenv, "TANDEM_TEST_GONE")).result(timeout=60))
                worker_processes.shutdown(wait=True)
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "None\n"


def test_pack_and_serve_start_the_fork_server_first_when_they_will_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[str, ...]] = []
    monkeypatch.setattr(fork_server, "start", lambda: started.append(fork_server.modules()) or True)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for argv in (["pack", "--no-secret-scan"], ["tools"], [], ["pack", "src", "--no-secret-scan"], ["call", "x"]):
        entry._start_workers(argv)
    assert started == []
    entry._start_workers(["pack", "src", "-o", "out.xml"])
    entry._start_workers(["serve", "--http"])
    assert len(started) == 2 and all({secret_engine.PREPARED, tokens.PREPARED} <= set(s) for s in started)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # one CPU: a second process would only compete
    entry._start_workers(["pack"])
    entry._start_workers(["serve"])
    assert len(started) == 2


def test_the_entry_point_names_the_modules_the_scanner_and_the_counter_preload() -> None:
    """``tandem/__main__.py`` names them without importing the scanner or tiktoken; they must agree."""
    assert entry.PRELOADS == (secret_engine.PREPARED, tokens.PREPARED)
    for module in entry.PRELOADS:
        assert (Path(secret_engine.__file__).parent / (module.rsplit(".", 1)[1] + ".py")).is_file()


@needs_fork_server
def test_a_stopped_server_is_gone_at_once_and_the_next_pool_starts_another(tmp_path: Path) -> None:
    """``tandem pack`` stops the server as it exits: one still importing would hold the command's output open
    until it is done (whoever reads the output would wait for it)."""
    script = tmp_path / "workers.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, time
            from multiprocessing import forkserver
            from tandem import fork_server
            from tandem.core import worker_processes

            if __name__ == "__main__":
                fork_server.preload("probe_slow")  # an import that takes 30 s
                fork_server.start()
                server = forkserver._forkserver._forkserver_pid
                started = time.monotonic()
                fork_server.stop()
                print(time.monotonic() - started < 5, fork_server.running())
                try:
                    os.kill(server, 0)
                    print("still there")
                except ProcessLookupError:
                    print("gone")
                del os.environ["PROBE_SLOW"]  # the next server imports it at once
                worker = worker_processes.submit(os.getpid).result(timeout=120)
                print(fork_server.running(), forkserver._forkserver._forkserver_pid not in (None, server), worker > 0)
                worker_processes.shutdown(wait=True)
                fork_server.stop()
            """
        )
    )
    (tmp_path / "probe_slow.py").write_text("import os, time\nif os.environ.get('PROBE_SLOW'):\n    time.sleep(30)\n")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "PROBE_SLOW": "1"},
        capture_output=True,  # the pipes a slow server would hold open
        text=True,
        timeout=25,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True False", "gone", "True True True"]


@needs_fork_server
def test_a_fork_server_that_cannot_start_leaves_workers_spawned(tmp_path: Path) -> None:
    """(The failure is injected: ``ensure_running`` raises as it does when there is no place for its socket.)"""
    script = tmp_path / "workers.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            from multiprocessing import forkserver
            from tandem import fork_server
            from tandem.core import worker_processes

            def no_socket():
                raise OSError(28, "No space left on device")

            if __name__ == "__main__":
                forkserver.ensure_running = no_socket
                print(fork_server.start(), fork_server.available(), fork_server.context().get_start_method())
                print(worker_processes.submit(os.getpid).result(timeout=120) != os.getpid())
                worker_processes.shutdown(wait=True)
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False False spawn", "True"]


def _die() -> None:
    os._exit(3)


@pytest.mark.anyio
async def test_a_call_that_met_a_broken_pool_leaves_the_pool_made_since_alone() -> None:
    """A caller told its pool broke discards that pool, not the one another caller has made since (which would
    cancel that caller's queued work)."""
    worker_processes.shutdown(wait=True)
    doomed = worker_processes.submit(_die)
    with pytest.raises(BrokenProcessPool):
        doomed.result(timeout=60)  # the pool is broken; the next submission makes another
    queued = [worker_processes.submit(time.sleep, 0.3) for _ in range(worker_processes.worker_count() * 3)]
    made_since = worker_processes._pool
    with pytest.raises(ToolError, match="worker process died"):
        await worker_processes.result(doomed)
    try:
        assert worker_processes._pool is made_since  # still the pool in use, not shut down
        assert [future.result(timeout=60) for future in queued] == [None] * len(queued)
    finally:
        worker_processes.shutdown(wait=True)
