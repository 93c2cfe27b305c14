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


def test_the_seed_variables_are_aliases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tandem.toml").write_text('port = 9000\nlog_level = "error"\n[catalog.cache_ttl]\nagents = 5\n')
    assert load_settings(tmp_path).auto_restart is True
    monkeypatch.setenv("MCP_PORT", "3700")
    monkeypatch.setenv("MCP_DATA_DIR", "./.claude/mcp-server/data")
    monkeypatch.setenv("MCP_LOG_LEVEL", "WARN")
    monkeypatch.setenv("MCP_CACHE_TTL", "120")
    monkeypatch.setenv("MCP_AUTO_RESTART", "false")
    settings = load_settings(tmp_path)
    # They win over tandem.toml ...
    assert settings.port == 3700 and settings.log_level == "warning" and settings.auto_restart is False
    assert settings.data_path == tmp_path.resolve() / ".claude" / "mcp-server" / "data"
    assert settings.catalog.cache_ttl.model_dump() == dict.fromkeys(("agents", "skills", "workflows", "patterns"), 120)
    # ... and lose to Tandem's own variable of the same setting, one namespace at a time.
    monkeypatch.setenv("TANDEM_PORT", "3800")
    monkeypatch.setenv("TANDEM_CATALOG__CACHE_TTL__PATTERNS", "900")
    monkeypatch.setenv("TANDEM_LOG_LEVEL", "debug")
    settings = load_settings(tmp_path)
    assert settings.port == 3800 and settings.log_level == "debug"
    assert settings.catalog.cache_ttl.patterns == 900 and settings.catalog.cache_ttl.agents == 120
    # An empty variable is no setting at all.
    monkeypatch.setenv("MCP_CACHE_TTL", "")
    assert load_settings(tmp_path).catalog.cache_ttl.agents == 5


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MCP_PORT", "seventy", "port: Input should be a valid integer"),
        ("MCP_CACHE_TTL", "-1", "catalog.cache_ttl.agents: Input should be greater than or equal to 0"),
        ("MCP_AUTO_RESTART", "sometimes", "auto_restart: Input should be a valid boolean"),
        ("MCP_LOG_LEVEL", "loud", "log_level: Input should be"),
    ],
)
def test_a_bad_seed_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as failed:
        load_settings(tmp_path)
    assert expected in str(failed.value) and f"set by {variable}, TANDEM_" in str(failed.value)
