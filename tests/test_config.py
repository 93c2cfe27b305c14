"""Settings: defaults, tandem.toml, TANDEM_* variables, command-line overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.config import load_settings
from tandem.core import ConfigError


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.workspace == tmp_path.resolve()
    assert settings.host == "127.0.0.1"
    assert settings.toolsets is None
    assert settings.data_path == tmp_path.resolve() / ".tandem"


def test_precedence_file_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tandem.toml").write_text('port = 9000\nhost = "127.0.0.2"\ntoolsets = ["server"]\nworkspace = "/"\n')
    assert load_settings(tmp_path).port == 9000
    assert load_settings(tmp_path).workspace == tmp_path.resolve()  # the file cannot move the workspace
    monkeypatch.setenv("TANDEM_PORT", "9100")
    monkeypatch.setenv("TANDEM_TOOLSETS", "server, conformance")
    settings = load_settings(tmp_path)
    assert settings.port == 9100
    assert settings.toolsets == ["server", "conformance"]
    assert settings.host == "127.0.0.2"
    assert load_settings(tmp_path, port=9200, host=None).port == 9200


def test_workspace_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_WORKSPACE", str(tmp_path))
    assert load_settings().workspace == tmp_path.resolve()


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        ("port = 70000\n", {}, "port: Input should be less than or equal to 65535"),
        ("", {"TANDEM_MAX_BODY_BYTES": "-5"}, "TANDEM_MAX_BODY_BYTES"),
        ("colour = 'blue'\n", {}, "colour: unknown setting"),
        ("port = \n", {}, "not valid TOML"),
        ("", {"TANDEM_LOG_LEVEL": "loud"}, "log_level: Input should be"),
    ],
)
def test_invalid_settings_name_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: dict[str, str], expected: str
) -> None:
    (tmp_path / "tandem.toml").write_text(toml)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as failed:
        load_settings(tmp_path)
    assert expected in str(failed.value)


def test_missing_workspace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        load_settings(tmp_path / "nope")
