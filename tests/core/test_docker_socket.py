"""The docker_socket backend against a stand-in Engine that speaks the Docker Engine API on a unix socket (this
machine has no Docker engine; see ``fake_docker``). What the container is asked to be is checked field by field."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import uvicorn

from tandem.core import CommandPolicy, CommandRefused, ToolError
from tandem.core.backends import BackendSettings, CommandRequest, DockerSocketSettings, backend_for
from tests.core.fake_docker import FakeEngine

pytestmark = pytest.mark.anyio


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[FakeEngine, Path]]:
    fake = FakeEngine()
    socket = tmp_path / "docker.sock"
    server = uvicorn.Server(uvicorn.Config(fake.app, uds=str(socket), log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        for _ in range(1000):
            if server.started:
                break
            await anyio.sleep(0.01)
        else:
            pytest.fail("the stand-in Docker Engine did not start")
        yield fake, socket
        server.should_exit = True


def _backend(socket: Path, workspace: Path, image: str = "python:3.12-slim", policy: CommandPolicy | None = None):  # type: ignore[no-untyped-def]
    settings = BackendSettings(docker_socket=DockerSocketSettings(socket=socket, image=image, cpus=1.5, memory_mb=512))
    return backend_for("docker_socket", workspace, policy or CommandPolicy(), settings)


async def test_runs_in_a_locked_down_container_with_the_workspace_mounted(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake, socket = engine
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "a.txt").write_text("alpha\n")
    seen: list[str] = []

    async def on_output(stream: str, text: str) -> bool:
        seen.append(text)
        return False

    result = await _backend(socket, workspace).run(
        CommandRequest(argv=["cat", "a.txt"], cwd="src", env={"MODE": "test"}), on_output
    )
    assert result.ok and result.stdout == "alpha\n" and seen == ["alpha\n"]
    (container,) = fake.containers.values()
    spec = container.spec
    assert spec["Image"] == "python:3.12-slim" and spec["Cmd"] == ["cat", "a.txt"]
    assert spec["WorkingDir"] == "/workspace/src" and spec["Env"] == ["MODE=test"]
    assert spec["User"] == f"{os.getuid()}:{os.getgid()}" and spec["NetworkDisabled"] is True
    host = spec["HostConfig"]
    assert host["Binds"] == [f"{workspace}:/workspace:rw"] and host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NanoCpus"] == 1_500_000_000 and host["Memory"] == 512 * 1024 * 1024 and host["PidsLimit"] > 0
    assert container.deleted


async def test_exit_codes_and_stderr_come_back(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, socket = engine
    result = await _backend(socket, tmp_path).run(CommandRequest(argv=["ls", "missing"]))
    assert result.exit_code not in (0, None) and "missing" in result.stderr


async def test_timeout_kills_and_removes_the_container(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake, socket = engine
    started = time.monotonic()
    result = await _backend(socket, tmp_path, policy=CommandPolicy(allow=["sleep"])).run(
        CommandRequest(argv=["sleep", "30"], timeout_s=1)
    )
    assert result.timed_out and not result.ok and time.monotonic() - started < 10
    assert all(c.deleted and c.done for c in fake.containers.values())


async def test_refusals_need_no_engine(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake, socket = engine
    backend = _backend(socket, tmp_path)
    with pytest.raises(CommandRefused, match="not on the allow-list"):
        await backend.run(CommandRequest(argv=["rm", "-rf", "/"]))
    with pytest.raises(ToolError, match="outside the workspace"):
        await backend.run(CommandRequest(argv=["ls"], cwd="../.."))
    with pytest.raises(ToolError, match="does not pass stdin"):
        await backend.run(CommandRequest(argv=["cat"], stdin="x"))
    assert fake.containers == {}
    with pytest.raises(ToolError, match="not on the Docker host; pull it first"):
        await _backend(socket, tmp_path, image="missing:latest").run(CommandRequest(argv=["ls"]))


async def test_an_absent_engine_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="not reachable"):
        await _backend(tmp_path / "no.sock", tmp_path).run(CommandRequest(argv=["ls"]))
