"""The gateway: a real coder process mounted under ``coder.*``, over stdio and over HTTP, with its failures."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tandem.config import load_settings
from tandem.core import Registry, ToolError, Toolset, discover_toolsets
from tandem.core.registry import load_toolset
from tandem.server import TandemServer
from tests.conftest import ServerProcess
from tests.test_import_path import plant, ran
from tests.toolsets.calls import call, git, refused

pytestmark = pytest.mark.anyio

SLOW = "import sys, time\nfor i in range(int(sys.argv[1])):\n    print('tick', i, flush=True)\n    time.sleep(0.2)\n"


@pytest.fixture
def repo(tmp_path: Path, git_identity: None) -> Path:
    """A real repository with one Python module, committed, and a slow script for long calls."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "calc.py").write_text("def total(xs):\n    print(xs)\n    return sum(xs)\n")
    (root / "slow.py").write_text(SLOW)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "start")
    return root


@contextlib.asynccontextmanager
async def orchestrator(
    workspace: Path, *extra: Toolset, on_message: Any = None, **settings: Any
) -> AsyncIterator[Client]:
    """A client of an in-process orchestrator (its server and gateway toolsets, plus ``extra``) that mounts the
    upstreams ``settings`` give, or the default coder child."""
    loaded = load_settings(workspace, profile="orchestrator", **settings)
    available = discover_toolsets()
    registry = Registry([*(load_toolset(available[n]) for n in ("server", "gateway")), *extra])
    tandem = TandemServer(registry, loaded)
    async with Client(tandem.server, mode="legacy", message_handler=on_message) as client:
        yield client


async def status(client: Client, name: str = "coder") -> dict[str, Any]:
    upstreams = (await call(client, "gateway_status"))["upstreams"]
    return next(u for u in upstreams if u["name"] == name)


async def delegate(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    """The structured result (or text) of a successful ``delegate``."""
    result = await client.call_tool("delegate", {"tool": tool, "arguments": arguments})
    assert not result.is_error, result.content[0].text
    return result.structured_content if result.structured_content is not None else result.content[0].text


async def delegate_refused(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> str:
    result = await client.call_tool("delegate", {"tool": tool, "arguments": arguments})
    assert result.is_error, result
    return result.content[0].text


def reaped(pid: int, timeout: float = 10.0) -> bool:
    """Whether process ``pid`` is gone (and reaped by its parent) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


async def test_the_coders_tools_are_served_under_its_namespace_with_their_schemas(repo: Path) -> None:
    coder = Registry.from_entry_points(["server", "workspace", "code", "git"])
    async with orchestrator(repo) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        state = await status(client)
    assert {f"coder.{name}" for name in coder.tools} <= tools.keys()
    assert "ast_rewrite" not in tools and "read_file" not in tools  # the coder's toolsets are not served directly
    rewrite = tools["coder.ast_rewrite"]
    assert rewrite.input_schema == coder.tools["ast_rewrite"].input_schema
    assert rewrite.output_schema == coder.tools["ast_rewrite"].signature.output_schema
    assert rewrite.description == coder.tools["ast_rewrite"].description
    assert tools["coder.read_file"].annotations.read_only_hint is True
    assert tools["coder.delete_file"].annotations.destructive_hint is True
    assert state["state"] == "running" and state["transport"] == "stdio" and state["tools"] == len(coder.tools)
    assert state["pid"] is not None and state["pid"] != os.getpid()


async def test_forwarded_calls_read_and_rewrite_the_real_repository(repo: Path) -> None:
    async with orchestrator(repo) as client:
        read = await call(client, "coder.read_file", path="calc.py")
        preview = await call(client, "coder.ast_rewrite", pattern="print($A)", rewrite="log($A)", language="python")
        hashes = {f["path"]: f["sha256"] for f in preview["files"]}
        applied = await call(
            client,
            "coder.ast_rewrite",
            pattern="print($A)",
            rewrite="log($A)",
            language="python",
            dry_run=False,
            expected_hashes=hashes,
        )
    assert "def total(xs):" in read
    assert preview["applied"] is False and "-    print(xs)" in preview["diff"] and list(hashes) == ["calc.py"]
    assert applied["applied"] is True
    assert (repo / "calc.py").read_text() == "def total(xs):\n    log(xs)\n    return sum(xs)\n"
    assert "calc.py" in git(repo, "status", "--porcelain")


async def test_delegate_calls_by_name_with_or_without_the_namespace(repo: Path) -> None:
    async with orchestrator(repo) as client:
        short = await delegate(client, "read_file", {"path": "calc.py"})
        full = await delegate(client, "coder.git_status")
        missing = await delegate_refused(client, "read_file", {"path": "nope.py"})
        unknown = await delegate_refused(client, "no_such_tool")
        wrong_args = await delegate_refused(client, "read_file", {"paht": "calc.py"})
        with pytest.raises(MCPError, match=re.escape("Unknown tool: 'coder.no_such_tool'")):
            await client.call_tool("coder.no_such_tool", {})
    assert "def total(xs):" in short
    assert full["branch"] == "main" and full["entries"] == []
    assert "nope.py does not exist" in missing
    assert "the coder upstream has no tool 'no_such_tool'; it has: " in unknown and "ast_rewrite" in unknown
    assert "coder.read_file" in wrong_args and "path" in wrong_args


async def test_the_upstream_refuses_attack_inputs_as_it_would_directly(repo: Path) -> None:
    async with orchestrator(repo) as client:
        escape = await refused(client, "coder.read_file", path="../../../etc/passwd")
        injected = await refused(client, "coder.execute_command", argv=["git", "-c", "core.pager=sh", "log"])
    assert "outside the workspace" in escape
    assert "git -c" in injected or "refused" in injected.lower()


async def test_progress_comes_back_and_a_slow_call_times_out_with_a_clear_error(repo: Path) -> None:
    seen: list[str | None] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with orchestrator(repo, gateway={"call_timeout_s": 2.0}) as client:
        done = await client.call_tool(
            "coder.execute_command", {"argv": ["python", "slow.py", "6"]}, progress_callback=progress
        )
        slow = await refused(client, "coder.execute_command", argv=["python", "slow.py", "50"])
        after = await call(client, "coder.read_file", path="calc.py")
    assert not done.is_error and done.structured_content["exit_code"] == 0
    assert any(m and m.startswith("tick") for m in seen)
    assert "coder.execute_command did not finish within 2 s ([gateway] call_timeout_s)" in slow
    assert "def total" in after  # the upstream survived the timeout


async def test_a_killed_coder_is_restarted_and_the_next_call_succeeds(repo: Path) -> None:
    async with orchestrator(repo) as client:
        first = (await status(client))["pid"]
        os.kill(first, signal.SIGKILL)
        assert reaped(first)
        read = await call(client, "coder.read_file", path="calc.py")
        after = await status(client)
    assert "def total" in read
    assert after["state"] == "running" and after["restarts"] == 1
    assert after["pid"] not in (None, first)
    assert "killed by SIGKILL" in after["reason"]


async def test_a_coder_that_dies_mid_call_gives_a_clear_error_and_comes_back(repo: Path) -> None:
    async with orchestrator(repo) as client:
        pid = (await status(client))["pid"]
        outcome: dict[str, str] = {}

        async def long_call() -> None:
            outcome["text"] = await refused(client, "coder.execute_command", argv=["python", "slow.py", "100"])

        async with anyio.create_task_group() as tg:
            tg.start_soon(long_call)
            running = await _started(b"slow.py\x00100")
            os.kill(pid, signal.SIGKILL)
        read = await call(client, "coder.read_file", path="calc.py")
    for orphan in running:  # the command ran in a process group of its own, which outlives the coder
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)
    assert "the coder upstream went away during coder.execute_command" in outcome["text"]
    assert "killed by SIGKILL" in outcome["text"] and "check before calling it again" in outcome["text"]
    assert "def total" in read


async def test_a_coder_restarted_with_other_tools_is_listed_again_and_the_client_told(tmp_path: Path) -> None:
    coder_ws, own_ws = tmp_path / "coder", tmp_path / "orchestrator"
    coder_ws.mkdir()
    own_ws.mkdir()
    (coder_ws / "tandem.toml").write_text('toolsets = ["server"]\n')
    upstreams = [{"name": "coder", "command": [sys.executable, "-m", "tandem", "serve", "--workspace", str(coder_ws)]}]
    told: list[str] = []

    async def on_message(message: Any) -> None:
        told.append(getattr(message, "method", type(message).__name__))

    async with orchestrator(own_ws, on_message=on_message, gateway={"upstreams": upstreams}) as client:
        before = {t.name for t in (await client.list_tools()).tools}
        (coder_ws / "tandem.toml").write_text('toolsets = ["server", "git"]\n')
        pid = (await status(client))["pid"]
        os.kill(pid, signal.SIGKILL)
        assert reaped(pid)
        await call(client, "coder.server_info")  # the restart, with git this time
        await call(client, "server_info")
        after = {t.name for t in (await client.list_tools()).tools}
    assert "coder.server_info" in before and "coder.git_status" not in before
    assert "coder.git_status" in after
    assert "notifications/tools/list_changed" in told


async def test_an_upstream_that_cannot_start_is_a_clear_error_and_the_orchestrator_stays_up(repo: Path) -> None:
    upstreams = [
        {"name": "missing", "command": [str(repo / "no-such-server")]},
        {"name": "crashing", "command": [sys.executable, "-c", "import sys; sys.exit('config is broken')"]},
        {"name": "preloaded", "command": [sys.executable, "-V"], "env": {"LD_PRELOAD": "/tmp/evil.so"}},
    ]
    async with orchestrator(repo, gateway={"upstreams": upstreams, "restart_backoff_s": 60}) as client:
        info = await call(client, "server_info")
        missing = await delegate_refused(client, "missing.anything")
        crashing = await delegate_refused(client, "crashing.anything")
        preloaded = await delegate_refused(client, "preloaded.anything")
        ambiguous = await delegate_refused(client, "anything")
        state = await status(client, "crashing")
        names = {t.name for t in (await client.list_tools()).tools}
    assert info["name"] == "tandem"
    assert missing.startswith("the missing upstream is not running: it did not start: could not start ")
    assert "No such file or directory" in missing and "it is being restarted (next attempt in " in missing
    assert "exited with code 1 (last stderr line: config is broken)" in crashing
    assert "the environment variable 'LD_PRELOAD' may not be set" in preloaded
    assert "no upstream has a tool 'anything'; upstreams: missing, crashing, preloaded" in ambiguous
    assert state["state"] == "restarting" and state["pid"] is None and state["tools"] == 0
    assert not any(name.startswith(("missing.", "crashing.")) for name in names)


async def test_an_http_upstream_is_mounted_by_url_and_its_loss_is_reported(repo: Path) -> None:
    server = ServerProcess(repo, "--profile", "coder")
    try:
        upstreams = [{"name": "remote", "url": f"{server.url}/mcp"}]
        async with orchestrator(repo, gateway={"upstreams": upstreams, "restart_backoff_s": 60}) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            read = await call(client, "remote.read_file", path="calc.py")
            delegated = await delegate(client, "git_status")
            state = await status(client, "remote")
            server.stop()
            lost = await refused(client, "remote.read_file", path="calc.py")
            later = await delegate_refused(client, "remote.read_file", {"path": "calc.py"})
    finally:
        server.stop()
    assert "remote.ast_rewrite" in names and "remote.git_commit" in names
    assert "def total" in read and delegated["branch"] == "main"
    assert state["transport"] == "http" and state["pid"] is None and state["state"] == "running"
    assert "the remote upstream could not be reached for remote.read_file" in lost
    assert "the remote upstream is not running" in later and "being restarted" in later


async def test_hooks_on_namespaced_tools_guard_direct_and_delegated_calls(repo: Path) -> None:
    guard = Toolset("guard")
    validated: list[bool] = []

    @guard.before("coder.write_file")
    def no_writes(tool: Any, arguments: dict[str, Any], ctx: Any) -> None:
        raise ToolError(f"{tool.name} is refused until validation passed")

    @guard.after("*.run_all_validations")
    def remember(tool: Any, arguments: dict[str, Any], result: Any, ctx: Any) -> None:
        validated.append(not result.is_error and result.structured is not None)

    async with orchestrator(repo, guard) as client:
        direct = await refused(client, "coder.write_file", path="new.py", content="x = 1\n")
        delegated = await delegate_refused(client, "write_file", {"path": "new.py", "content": ""})
        await delegate(client, "run_all_validations")
    assert direct == delegated == "coder.write_file is refused until validation passed"
    assert not (repo / "new.py").exists()
    assert validated == [True]


async def test_the_coder_child_imports_none_of_the_workspaces_modules(tmp_path: Path, git_identity: None) -> None:
    """It starts with the workspace as its directory (tests/test_import_path.py)."""
    workspace = plant(tmp_path / "ws")
    (workspace / "calc.py").write_text("def total(xs):\n    return sum(xs)\n")
    git(workspace, "init", "-q")
    async with orchestrator(workspace) as client:
        state = await status(client)
        read = await call(client, "coder.read_file", path="calc.py")
    assert state["state"] == "running", state
    assert "def total(xs):" in read
    assert ran(workspace) == []


async def test_the_gateway_without_upstreams_says_how_to_add_one(repo: Path) -> None:
    async with orchestrator(repo, gateway={"default_coder": False}) as client:
        message = await delegate_refused(client, "read_file")
        state = await call(client, "gateway_status")
    assert "no upstream servers are configured: add [[gateway.upstreams]]" in message
    assert state == {"upstreams": []}


def test_settings_refuse_an_upstream_with_no_target_or_two_of_the_same_name(tmp_path: Path) -> None:
    from tandem.core import ConfigError

    with pytest.raises(ConfigError, match="give exactly one of 'command' and 'url'"):
        load_settings(tmp_path, gateway={"upstreams": [{"name": "coder"}]})
    with pytest.raises(ConfigError, match=re.escape("upstream name(s) a given more than once")):
        load_settings(tmp_path, gateway={"upstreams": [{"name": "a", "url": "http://x/mcp"}] * 2})
    with pytest.raises(ConfigError, match=re.escape("gateway.upstreams.0.name")):
        load_settings(tmp_path, gateway={"upstreams": [{"name": "co.der", "url": "http://x/mcp"}]})


def _running(argv_part: bytes) -> list[int]:
    """The processes whose command line holds ``argv_part`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if argv_part in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


async def _started(argv_part: bytes) -> list[int]:
    """The processes running ``argv_part``, once there is one."""
    with anyio.fail_after(20):
        while True:
            found = _running(argv_part)
            if found:
                return found
            await anyio.sleep(0.05)
