"""A workspace's tandem.toml cannot make Tandem start programs or send data on its own until the user trusts that
very file (``tandem trust``); the same settings from the user's environment or command line need no trust."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tandem import workspace_trust
from tandem.config import load_settings
from tandem.core import ConfigError

MARK_UPSTREAM = """
[[gateway.upstreams]]
name = "helper"
command = ["{python}", "-c", "import pathlib; pathlib.Path({mark!r}).write_text('ran'); print('x')"]
"""


def cloned(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace whose tandem.toml would start a program that leaves a mark; the mark's path."""
    workspace = tmp_path / "cloned"
    workspace.mkdir()
    mark = tmp_path / "upstream-ran"
    (workspace / "tandem.toml").write_text(
        'profile = "orchestrator"\n' + MARK_UPSTREAM.format(python=sys.executable, mark=str(mark))
    )
    return workspace, mark


def tandem(workspace: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tandem", *args, "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_privileged_settings_are_refused_until_the_file_is_trusted_as_it_is(tmp_path: Path) -> None:
    workspace, _ = cloned(tmp_path)
    with pytest.raises(ConfigError) as refused:
        load_settings(workspace)
    message = str(refused.value)
    assert "tandem.toml sets gateway.upstreams" in message and f"'tandem trust' in {workspace.resolve()}" in message
    content = (workspace / "tandem.toml").read_bytes()
    workspace_trust.trust(workspace.resolve(), content)
    assert [u.name for u in load_settings(workspace).gateway.upstreams] == ["helper"]
    # One byte changed: not the file that was trusted.
    (workspace / "tandem.toml").write_bytes(content.replace(b"helper", b"helpe2"))
    with pytest.raises(ConfigError, match=r"sets gateway\.upstreams"):
        load_settings(workspace)
    (workspace / "tandem.toml").write_bytes(content)
    assert load_settings(workspace).gateway.upstreams
    assert workspace_trust.revoke(workspace.resolve()) and not workspace_trust.revoke(workspace.resolve())
    with pytest.raises(ConfigError, match=r"sets gateway\.upstreams"):
        load_settings(workspace)


def test_trust_is_per_workspace_and_kept_outside_it(tmp_path: Path) -> None:
    workspace, _ = cloned(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "tandem.toml").write_bytes((workspace / "tandem.toml").read_bytes())
    workspace_trust.trust(workspace.resolve(), (workspace / "tandem.toml").read_bytes())
    assert load_settings(workspace).gateway.upstreams
    with pytest.raises(ConfigError, match=r"sets gateway\.upstreams"):
        load_settings(other)  # the same text elsewhere is another workspace's file
    store = workspace_trust.store_path()
    assert not store.is_relative_to(workspace) and store.is_relative_to(os.environ["XDG_CONFIG_HOME"])
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert json.loads(store.read_text())["workspaces"][str(workspace.resolve())]["sha256"]


def test_settings_that_need_no_trust_and_the_users_own_need_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tandem.toml").write_text('toolsets = ["server"]\n[llm]\nmodel = "m"\ntimeout = 5\n')
    assert load_settings(tmp_path).toolsets == ["server"]  # nothing privileged: no trust asked
    upstream = [{"name": "helper", "url": "http://127.0.0.1:9/mcp"}]
    assert load_settings(tmp_path, gateway={"upstreams": upstream}).gateway.upstreams[0].name == "helper"
    monkeypatch.setenv("TANDEM_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    assert load_settings(tmp_path).llm.base_url == "http://127.0.0.1:9/v1"


def test_a_cloned_workspace_cannot_start_a_program_with_the_server(tmp_path: Path) -> None:
    """The attack: a repository's tandem.toml names an upstream command; serving it must not run it."""
    workspace, mark = cloned(tmp_path)
    served = subprocess.run(
        [sys.executable, "-m", "tandem", "serve", "--workspace", str(workspace)],
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert served.returncode == 2 and "sets gateway.upstreams" in served.stderr and "Traceback" not in served.stderr
    assert not mark.exists()


def test_tandem_trust_shows_what_it_trusts_then_records_it(tmp_path: Path) -> None:
    workspace, mark = cloned(tmp_path)
    before = tandem(workspace, "tools")
    assert before.returncode == 2 and "tandem trust" in before.stderr
    trusted = tandem(workspace, "trust")
    assert trusted.returncode == 0, trusted.stderr
    assert f"gateway upstream 'helper': runs {sys.executable} -c" in trusted.stdout
    assert f"trusted {workspace.resolve() / 'tandem.toml'} as it is now" in trusted.stdout
    after = tandem(workspace, "tools")
    assert after.returncode == 0, after.stderr
    assert not mark.exists()  # trusting reads the file; it runs nothing
    revoked = tandem(workspace, "trust", "--revoke")
    assert revoked.returncode == 0 and "no longer trusted" in revoked.stdout
    assert tandem(workspace, "tools").returncode == 2


def test_tandem_trust_without_anything_to_trust(tmp_path: Path) -> None:
    nothing = tandem(tmp_path, "trust")
    assert nothing.returncode == 2 and "no tandem.toml" in nothing.stderr
    (tmp_path / "tandem.toml").write_text('toolsets = ["server"]\n')
    plain = tandem(tmp_path, "trust")
    assert plain.returncode == 0 and "sets nothing that needs trust" in plain.stdout
    (tmp_path / "tandem.toml").write_text("toolsets = [\n")
    broken = tandem(tmp_path, "trust")
    assert broken.returncode == 2 and "cannot read it as TOML" in broken.stderr


def test_an_unreadable_trust_store_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace, _ = cloned(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    workspace_trust.store_path().parent.mkdir(parents=True)
    workspace_trust.store_path().write_text("{not json")
    with pytest.raises(ConfigError, match=r"tandem.toml: cannot read .*trusted-workspaces.json"):
        load_settings(workspace)
