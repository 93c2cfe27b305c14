"""The command runner and its policy, with attack inputs: real subprocesses throughout."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
import pytest

from tandem.core import CommandPolicy, CommandRefused, CommandRunner, PathRefused

pytestmark = pytest.mark.anyio


@pytest.fixture
def runner(tmp_path: Path) -> CommandRunner:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("alpha\n")
    return CommandRunner(tmp_path, CommandPolicy(timeout_s=10))


async def test_runs_argv_in_the_workspace(runner: CommandRunner) -> None:
    result = await runner.run_checked(["cat", "src/a.txt"])
    assert result.ok and result.stdout == "alpha\n" and result.exit_code == 0
    listing = await runner.run_checked(["ls"], cwd="src")
    assert listing.stdout.split() == ["a.txt"]


async def test_non_zero_exit_is_a_result_not_an_error(runner: CommandRunner) -> None:
    result = await runner.run_checked(["ls", "missing-file"])
    assert result.exit_code != 0 and not result.ok and "missing-file" in result.stderr


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["rm", "-rf", "src"], "not on the allow-list"),
        (["sh", "-c", "cat /etc/passwd"], "counts as a shell command"),
        (["env", "X=1", "rm", "-rf", "src"], "not on the allow-list"),
        (["nice", "-n", "5", "env", "sudo", "ls"], "denied"),
        (["env", "-S", "rm -rf src"], "hides which command runs"),
        (["env", "--chdir=/", "ls"], "hides which command runs"),
        (["timeout", "5", "python3", "-c", "print(1)"], "counts as a shell command"),
        (["python3", "-Ic", "import os"], "counts as a shell command"),
        (["node", "--eval=1"], "counts as a shell command"),
        (["find", ".", "-exec", "rm", "{}", ";"], "denied"),
        (["git", "-c", "core.pager=sh", "log"], "denied"),
        (["cat", "/etc/passwd"], "outside the workspace"),
        (["cat", "../../../etc/passwd"], "outside the workspace"),
        (["grep", "--file=/etc/shadow", "x"], "outside the workspace"),
        (["./src/a.txt"], "not an executable"),
        (["/tmp/../bin/rm", "x"], "'rm' is not on the allow-list"),
        (["/opt/elsewhere/ls"], "neither a program"),
        (["no-such-program-xyz"], "not on the allow-list"),
        (["ls;rm", "-rf", "src"], "not on the allow-list"),
        ([], "no command"),
    ],
)
async def test_policy_refusals(runner: CommandRunner, argv: list[str], reason: str) -> None:
    with pytest.raises(CommandRefused, match=reason):
        await runner.run_checked(argv)
    assert (runner.workspace / "src" / "a.txt").exists()


async def test_an_allowed_program_that_is_missing_says_so(tmp_path: Path) -> None:
    runner = CommandRunner(tmp_path, CommandPolicy(allow=["no-such-program-xyz"]))
    with pytest.raises(CommandRefused, match="not installed"):
        await runner.run_checked(["no-such-program-xyz"])


async def test_a_program_planted_in_the_workspace_is_not_the_allowed_one(runner: CommandRunner) -> None:
    fake = runner.workspace / "git"
    fake.write_text("#!/bin/sh\ntouch pwned\n")
    fake.chmod(0o755)
    with pytest.raises(CommandRefused, match="not on the allow-list"):
        await runner.run_checked(["./git", "status"])
    result = await runner.run_checked(["git", "--version"], env={"HOME": str(runner.workspace)})
    assert result.ok and not (runner.workspace / "pwned").exists()


async def test_shell_strings_need_the_policy(tmp_path: Path) -> None:
    closed = CommandRunner(tmp_path, CommandPolicy())
    with pytest.raises(CommandRefused, match="shell command strings are not allowed"):
        await closed.run_shell_checked("echo hi | tr a-z A-Z")
    opened = CommandRunner(tmp_path, CommandPolicy(shell=True))
    assert (await opened.run_shell_checked("echo hi | tr a-z A-Z")).stdout == "HI\n"


@pytest.mark.parametrize("cwd", ["..", "/etc", "../" + "x"])
async def test_cwd_outside_the_root_is_refused(runner: CommandRunner, cwd: str) -> None:
    with pytest.raises(PathRefused):
        await runner.run_checked(["ls"], cwd=cwd)


async def test_secrets_are_scrubbed_and_risky_variables_refused(runner: CommandRunner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws_secret")
    monkeypatch.setenv("DB_PASSWORD", "pw")
    monkeypatch.setenv("HARMLESS", "kept")
    script = runner.workspace / "env.py"
    names = {"GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "HARMLESS", "MINE"}
    script.write_text(f"import os\nprint(sorted(k for k in os.environ if k in {names!r}))\n")
    result = await runner.run_checked([Path(sys.executable).name, "env.py"], env={"MINE": "1"})
    assert result.stdout.strip() == "['HARMLESS', 'MINE']"
    for name in ("LD_PRELOAD", "PATH", "GIT_CONFIG_COUNT", "BASH_ENV"):
        with pytest.raises(CommandRefused, match="may not be set"):
            await runner.run_checked(["ls"], env={name: "x"})


async def test_stdin_is_closed_unless_given(runner: CommandRunner) -> None:
    assert (await runner.run_checked(["cat"])).stdout == ""
    assert (await runner.run_checked(["cat"], stdin="fed\n")).stdout == "fed\n"


async def test_timeout_kills_the_whole_group_including_grandchildren(tmp_path: Path) -> None:
    runner = CommandRunner(tmp_path, CommandPolicy(shell=True))
    started = time.monotonic()
    result = await runner.run_shell_checked(
        "sleep 60 & echo $! >> pids; sleep 60 & echo $! >> pids; echo started; wait", timeout_s=1
    )
    assert result.timed_out and result.stdout == "started\n"
    assert time.monotonic() - started < 8
    await _gone(tmp_path / "pids")


async def test_a_grandchild_holding_the_pipe_does_not_hang_the_call(tmp_path: Path) -> None:
    runner = CommandRunner(tmp_path, CommandPolicy(shell=True))
    started = time.monotonic()
    result = await runner.run_shell_checked("(sleep 30 & echo $! > pids) ; echo done", timeout_s=20)
    assert result.ok and result.stdout == "done\n"
    assert time.monotonic() - started < 5
    await _gone(tmp_path / "pids")  # the leftover in the command's group is killed, not left running


async def test_output_is_capped_head_and_tail(tmp_path: Path) -> None:
    runner = CommandRunner(tmp_path, CommandPolicy(max_output_bytes=1000))
    (tmp_path / "big.txt").write_text("".join(f"line {i}\n" for i in range(10_000)))
    result = await runner.run_checked(["cat", "big.txt"])
    assert result.stdout.startswith("line 0\n") and result.stdout.endswith("line 9999\n")
    assert "bytes of output cut here" in result.stdout and result.stdout_bytes == (tmp_path / "big.txt").stat().st_size
    assert len(result.stdout) < 1200


async def test_an_output_flood_is_stopped(tmp_path: Path) -> None:
    runner = CommandRunner(tmp_path, CommandPolicy(kill_after_output_bytes=2_000_000, timeout_s=60))
    started = time.monotonic()
    result = await runner.run_checked(["cat", "/dev/zero"])
    assert result.output_limit_hit and not result.ok
    assert time.monotonic() - started < 10


async def test_cancellation_kills_the_command(tmp_path: Path) -> None:
    runner = CommandRunner(tmp_path, CommandPolicy(shell=True))
    with anyio.move_on_after(1):
        await runner.run_shell_checked("echo $$ > pids; exec sleep 45", timeout_s=60)
    await _gone(tmp_path / "pids")


async def test_output_streams_to_the_callback(runner: CommandRunner) -> None:
    seen: list[tuple[str, str]] = []

    async def on_output(stream: str, text: str) -> None:
        seen.append((stream, text))

    await runner.run_checked(["ls", "src", "missing"], on_output=on_output)
    assert ("stdout", "src:\na.txt\n") in seen or any("a.txt" in t for s, t in seen if s == "stdout")
    assert any("missing" in t for s, t in seen if s == "stderr")


@pytest.mark.skipif(not os.path.exists("/usr/bin/prlimit"), reason="resource limits need prlimit (Linux)")
async def test_resource_limits_apply(tmp_path: Path) -> None:
    runner = CommandRunner(tmp_path, CommandPolicy(file_size_mb=1, cpu_seconds=1))
    result = await runner.run(["sh", "-c", "head -c 3000000 /dev/zero > big.bin"])
    assert result.exit_code != 0 and (tmp_path / "big.bin").stat().st_size <= 1024 * 1024
    spin = await runner.run(["sh", "-c", "while :; do :; done"], timeout_s=20)
    assert not spin.timed_out and spin.exit_code is not None and spin.exit_code < 0


async def _gone(listed: Path) -> None:
    """The processes whose pids the command wrote to ``listed`` are gone (or zombies: killed, not yet reaped).
    Signals are delivered asynchronously: allow them a moment to die, then insist. Only these processes count,
    not whatever else on the machine runs a command like theirs."""
    pids = [int(line) for line in listed.read_text().split()]
    assert pids

    def running(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            return state != "Z" and b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    for _ in range(50):
        if not any(running(pid) for pid in pids):
            return
        await anyio.sleep(0.1)
    pytest.fail(f"processes {[pid for pid in pids if running(pid)]} outlived the command by 5 s")
