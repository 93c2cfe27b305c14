"""The ssh_remote backend against a real OpenSSH server (Debian's openssh-server) on loopback."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tandem.core import CommandPolicy, CommandRefused, ToolError
from tandem.core.backends import BackendSettings, CommandRequest, SshRemoteSettings, backend_for

pytestmark = pytest.mark.anyio

SSHD = "/usr/sbin/sshd"
# Where CI installs it (scripts/test), the test must run; elsewhere it may be missing.
if not os.path.exists(SSHD) and not os.environ.get("CI"):
    pytest.skip("needs OpenSSH's sshd (apt-get install openssh-server)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshRemoteSettings]:
    """A real sshd on a free loopback port that lets this user in with a key made for the test."""
    base = tmp_path_factory.mktemp("sshd")
    os.chmod(base, 0o755)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "client_key")], check=True)
    (base / "authorized_keys").write_text((base / "client_key.pub").read_text())
    port = _free_port()
    (base / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
    )
    host_key = (base / "host_key.pub").read_text().split()
    (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    os.makedirs("/run/sshd", exist_ok=True)
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(base / "sshd_config")], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert process.poll() is None, process.stderr.read() if process.stderr else "sshd exited"
        assert time.monotonic() < deadline, "sshd did not start"
        time.sleep(0.05)
    remote = base / "remote-ws"
    (remote / "src").mkdir(parents=True)
    (remote / "src" / "there.txt").write_text("on the remote\n")
    try:
        yield SshRemoteSettings(
            host="127.0.0.1",
            port=port,
            username=getpass.getuser(),
            key_file=base / "client_key",
            known_hosts=base / "known_hosts",
            remote_workspace=str(remote),
        )
    finally:
        process.terminate()
        process.wait(10)


def _backend(settings: SshRemoteSettings, policy: CommandPolicy | None = None):  # type: ignore[no-untyped-def]
    return backend_for("ssh_remote", Path("/local-ws"), policy or CommandPolicy(), BackendSettings(ssh_remote=settings))


async def test_runs_in_the_remote_workspace(sshd: SshRemoteSettings) -> None:
    result = await _backend(sshd).run(CommandRequest(argv=["cat", "there.txt"], cwd="src"))
    assert result.ok and result.stdout == "on the remote\n"
    listing = await _backend(sshd).run(CommandRequest(argv=["ls", "src"], env={"GREETING": "hi there"}))
    assert listing.stdout == "there.txt\n", listing
    echo = await _backend(sshd).run(CommandRequest(argv=["printf", "%s|%s", "a b", "$HOME;rm -rf x"]))
    assert echo.stdout == "a b|$HOME;rm -rf x"  # every word arrives as it was sent: no remote shell expansion
    failed = await _backend(sshd).run(CommandRequest(argv=["ls", "missing"]))
    assert failed.exit_code not in (0, None) and "missing" in failed.stderr


async def test_policy_is_judged_before_connecting(sshd: SshRemoteSettings) -> None:
    backend = _backend(sshd)
    for argv, reason in [
        (["rm", "-rf", "."], "not on the allow-list"),
        (["cat", "/etc/shadow"], "outside the workspace"),
        (["cat", "../../etc/passwd"], "outside the workspace"),
        (["/bin/ls"], "without a directory"),
        (["sh", "-c", "id"], "counts as a shell command"),
    ]:
        with pytest.raises(CommandRefused, match=reason):
            await backend.run(CommandRequest(argv=argv))
    with pytest.raises(ToolError, match="outside the workspace"):
        await backend.run(CommandRequest(argv=["ls"], cwd="../.."))
    with pytest.raises(CommandRefused, match="may not be set"):
        await backend.run(CommandRequest(argv=["ls"], env={"LD_PRELOAD": "/tmp/x.so"}))


async def test_timeout_kills_the_remote_command(sshd: SshRemoteSettings) -> None:
    started = time.monotonic()
    result = await _backend(sshd, CommandPolicy(allow=["sleep"])).run(CommandRequest(argv=["sleep", "30"], timeout_s=1))
    assert result.timed_out and not result.ok
    assert time.monotonic() - started < 10


async def test_unknown_host_key_is_refused(sshd: SshRemoteSettings, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    stranger = sshd.model_copy(update={"known_hosts": empty})
    with pytest.raises(ToolError, match="could not run the command"):
        await _backend(stranger).run(CommandRequest(argv=["ls"]))
