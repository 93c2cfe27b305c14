"""Execution backends: the native one, the privileged opt-in, and a real host agent process on a unix socket."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tandem import workspace_trust
from tandem.core import CommandPolicy, CommandRefused, ToolError
from tandem.core.backends import BackendSettings, CommandRequest, HostAgentSettings, available_backends, backend_for

pytestmark = pytest.mark.anyio


def test_only_configured_backends_are_offered(tmp_path: Path) -> None:
    settings = BackendSettings()
    assert available_backends(settings) == ["native"]
    with pytest.raises(ToolError, match="'privileged' backend is not configured; available: native"):
        backend_for("privileged", tmp_path, CommandPolicy(), settings)
    with pytest.raises(ToolError, match="not configured"):
        backend_for("ssh_remote", tmp_path, CommandPolicy(), settings)
    agent = BackendSettings(default="host_agent", host_agent=HostAgentSettings(socket=tmp_path / "s"))
    assert available_backends(agent) == ["host_agent", "native"]
    assert backend_for(None, tmp_path, CommandPolicy(), agent).name == "host_agent"


async def test_privileged_runs_what_the_policy_refuses_and_says_so(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "junk").write_text("x")
    native = backend_for("native", tmp_path, CommandPolicy(), BackendSettings(privileged=True))
    with pytest.raises(CommandRefused):
        await native.run(CommandRequest(argv=["rm", "junk"]))
    privileged = backend_for("privileged", tmp_path, CommandPolicy(), BackendSettings(privileged=True))
    with caplog.at_level(logging.WARNING, logger="tandem.backends"):
        result = await privileged.run(CommandRequest(argv=["rm", "junk"]))
    assert result.ok and not (tmp_path / "junk").exists()
    assert any("PRIVILEGED" in r.getMessage() for r in caplog.records)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A real ``tandem agent`` on a socket, for its own workspace (whose policy also allows 'touch')."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "tandem.toml").write_text('[commands]\nallow = ["ls", "cat", "touch", "sleep", "pwd"]\n')
    # The command policy is read from a workspace's tandem.toml once its user trusts it (as they would run
    # 'tandem trust' there); the agent finds the trust store through XDG_CONFIG_HOME.
    workspace_trust.trust(host.resolve(), (host / "tandem.toml").read_bytes())
    (host / "on-host.txt").write_text("from the host\n")
    socket = tmp_path / "agent.sock"
    env = {**os.environ, "TANDEM_AGENT_TOKEN": "s3cret"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tandem", "agent", "--socket", str(socket), "--workspace", str(host)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not socket.exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the agent did not start"
        time.sleep(0.05)
    try:
        yield host, socket
    finally:
        process.terminate()
        process.wait(10)


def _backend(socket: Path, token: str | None = "s3cret"):  # type: ignore[no-untyped-def]
    settings = BackendSettings(host_agent=HostAgentSettings(socket=socket, token=token))
    return backend_for("host_agent", Path("/nonexistent-server-workspace"), CommandPolicy(), settings)


async def test_host_agent_runs_in_its_workspace_under_its_policy(agent: tuple[Path, Path]) -> None:
    host, socket = agent
    assert oct(socket.stat().st_mode & 0o777) == "0o600"
    seen: list[str] = []

    async def on_output(stream: str, text: str) -> bool:
        seen.append(text)
        return False

    result = await _backend(socket).run(CommandRequest(argv=["cat", "on-host.txt"]), on_output)
    assert result.ok and result.stdout == "from the host\n" and seen == ["from the host\n"]
    assert (await _backend(socket).run(CommandRequest(argv=["touch", "made-by-agent"]))).ok
    assert (host / "made-by-agent").exists()
    with pytest.raises(ToolError, match="not on the allow-list"):
        await _backend(socket).run(CommandRequest(argv=["git", "status"]))
    with pytest.raises(ToolError, match="outside the workspace"):
        await _backend(socket).run(CommandRequest(argv=["cat", "/etc/passwd"]))
    with pytest.raises(ToolError, match="shell command strings are not allowed"):
        await _backend(socket).run(CommandRequest(command="ls | cat", shell=True))


async def test_host_agent_wants_its_token(agent: tuple[Path, Path]) -> None:
    _, socket = agent
    for token in (None, "wrong"):
        with pytest.raises(ToolError, match="wrong or missing token"):
            await _backend(socket, token).run(CommandRequest(argv=["ls"]))


async def test_cancelling_the_call_stops_the_command_on_the_host(agent: tuple[Path, Path]) -> None:
    _, socket = agent
    with anyio.move_on_after(1):
        await _backend(socket).run(CommandRequest(argv=["sleep", "37"], timeout_s=60))
    for _ in range(50):  # the agent notices the hang-up and kills the command's group
        if not (await anyio.run_process(["pgrep", "-f", "sleep 37"], check=False)).stdout:
            break
        await anyio.sleep(0.1)
    else:
        pytest.fail("the command outlived the cancelled call by 5 s")


async def test_an_absent_agent_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="host agent is not reachable"):
        await _backend(tmp_path / "nobody.sock").run(CommandRequest(argv=["ls"]))
