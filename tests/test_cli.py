"""The tandem command, run as a user would: a real subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tandem import __version__
from tests.live_processes import GROUP, live


def tandem(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tandem", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_version(tmp_path: Path) -> None:
    done = tandem("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"tandem {__version__}"


def test_tools_lists_by_toolset(tmp_path: Path) -> None:
    plain = tandem("tools", cwd=tmp_path)
    both = tandem("tools", "--toolsets", "server,conformance", "--json", cwd=tmp_path)
    assert plain.returncode == 0
    assert plain.stdout.startswith("server: ")
    assert "server_info" in plain.stdout and "conformance" not in plain.stdout
    listing = json.loads(both.stdout)
    assert set(listing) == {"server", "conformance"}
    add = next(t for t in listing["conformance"] if t["name"] == "add")
    assert add["inputSchema"]["required"] == ["a", "b"]


def test_call_prints_results_and_errors(tmp_path: Path) -> None:
    added = tandem("call", "add", "a=2", "b=3", "--toolsets", "conformance", cwd=tmp_path)
    as_json = tandem("call", "server_info", "--json", cwd=tmp_path)
    bad = tandem("call", "add", "a=2", "b=three", "--toolsets", "conformance", cwd=tmp_path)
    failing = tandem("call", "test_error_handling", "--toolsets", "conformance", cwd=tmp_path)
    unknown = tandem("call", "nope", cwd=tmp_path)
    malformed = tandem("call", "add", "a", "--toolsets", "conformance", cwd=tmp_path)
    assert (added.returncode, added.stdout.strip()) == (0, "5")
    info = json.loads(as_json.stdout)
    assert info["structuredContent"]["workspace"] == str(tmp_path.resolve())
    assert bad.returncode == 2 and "b: Input should be a valid integer" in bad.stderr
    assert failing.returncode == 1 and "intentionally returns an error" in failing.stderr
    assert unknown.returncode == 2 and "Unknown tool: 'nope'" in unknown.stderr
    assert malformed.returncode == 2 and "is not key=value" in malformed.stderr
    for done in (bad, failing, unknown, malformed):
        assert "Traceback" not in done.stderr


def test_unknown_toolset_is_a_clear_error(tmp_path: Path) -> None:
    done = tandem("serve", "--toolsets", "server,nope", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown toolset(s) nope" in done.stderr


def test_serve_on_a_taken_port_says_so_without_a_traceback(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = tandem("serve", "--http", "--port", str(port), "--toolsets", "server", cwd=tmp_path)
    assert done.returncode == 1
    assert f"tandem: cannot listen on 127.0.0.1:{port}: " in done.stderr and "address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def _in_group(group: int) -> list[int]:
    return live(GROUP, group)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_pack_leaves_no_worker_process_behind(tmp_path: Path) -> None:
    """Run from outside the workspace, the pack scans in worker processes; ending at once (os._exit) must not
    leave them waiting forever on the pipe they read their work from."""
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    for n in range(20):
        (workspace / "src" / f"m{n}.py").write_text(f"VALUE = {n}  # {tmp_path.name}\n")  # never scanned before
    started = subprocess.Popen(
        [sys.executable, "-m", "tandem", "pack", "--workspace", str(workspace), "-o", str(tmp_path / "out.xml")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the workers it spawns are in it too
    )
    out, err = started.communicate(timeout=60)
    assert started.returncode == 0, err
    assert "Packed 20 files" in out
    deadline = time.monotonic() + 10
    while _in_group(started.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _in_group(started.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"worker processes left behind: {left}"


def test_pack_writes_to_a_pipe(tmp_path: Path) -> None:
    """``-o /dev/stdout`` into a pipe (as ``tandem pack -o /dev/stdout | less`` does): the pack, then the summary."""
    (tmp_path / "a.py").write_text("VALUE = 1\n")
    done = tandem("pack", "-o", "/dev/stdout", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("This is a packed representation of 1 files")
    assert '<file path="a.py">\nVALUE = 1\n</file>' in done.stdout and "written: /dev/stdout" in done.stdout


def test_pack_writes_the_pack_and_its_parts(tmp_path: Path) -> None:
    from tests.exact_tokens import tiktoken_count

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("".join(f"def f{n}(x):\n    return x * {n}\n\n" for n in range(400)))
    (tmp_path / "README.md").write_text("# Demo\n")
    whole = tandem("pack", "-o", "out.md", "--style", "markdown", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    text = (tmp_path / "out.md").read_text()
    assert "## File: src/a.py\n```python\ndef f0(x):" in text and "## File: README.md" in text
    assert f"{tiktoken_count(text):,} tokens (o200k_base)" in whole.stdout
    split = tandem("pack", "src", "-o", "part.xml", "--token-budget", "1000", "--line-numbers", cwd=tmp_path)
    assert split.returncode == 0, split.stderr
    parts = sorted(tmp_path.glob("part-*.xml"))
    assert len(parts) >= 3 and all(tiktoken_count(p.read_text()) <= 1000 for p in parts)
    assert '<file path="src/a.py" lines="1-' in parts[0].read_text() and "README" not in split.stdout
    # Files with CRLF and form feeds are written as they were packed and counted, whole or in parts.
    (tmp_path / "src" / "crlf.py").write_bytes(b"def windows():\r\n    return 1\r\n\x0c\ndef feed():\n    pass\n")
    exact = tandem("pack", "-o", "exact.xml", cwd=tmp_path)
    assert exact.returncode == 0, exact.stderr
    written = (tmp_path / "exact.xml").read_bytes().decode()
    pack_id = re.search(r"as pack ([0-9a-f]{12})", exact.stdout).group(1)
    assert written == (tmp_path / ".tandem" / "packs" / f"{pack_id}.txt").read_bytes().decode()
    assert "def windows():\r\n" in written and f"{tiktoken_count(written):,} tokens" in exact.stdout
    split = tandem("pack", "src", "-o", "exact.xml", "--token-budget", "1000", cwd=tmp_path)
    pack_id = re.search(r"as pack ([0-9a-f]{12})", split.stdout).group(1)
    parts = sorted(tmp_path.glob("exact-*.xml"), key=lambda p: int(p.stem.split("-")[1]))
    stored = (tmp_path / ".tandem" / "packs" / f"{pack_id}.txt").read_bytes().decode()
    assert "".join(p.read_bytes().decode() for p in parts) == stored and "\r\n" in stored
    outside = tandem("pack", "..", cwd=tmp_path)
    assert outside.returncode == 1 and "outside the workspace" in outside.stderr
