"""Settings: ``tandem.toml`` in the workspace, overridden by ``TANDEM_*`` variables, overridden by the command line.

The catalog seed's variables (``MCP_PORT``, ``MCP_DATA_DIR``, ``MCP_LOG_LEVEL``, ``MCP_CACHE_TTL``,
``MCP_AUTO_RESTART``) are aliases: they win over ``tandem.toml`` and lose to the ``TANDEM_*`` variable of the same
setting.

One ``Settings`` object is built at startup and passed down; nothing reads the environment after that.
"""

from __future__ import annotations

import contextvars
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from tandem import workspace_trust
from tandem.core.backends import BackendSettings
from tandem.core.catalog_settings import CacheTtl, CatalogSettings
from tandem.core.code_settings import CodeSettings
from tandem.core.command_policy import CommandPolicy
from tandem.core.errors import ConfigError
from tandem.core.gateway_settings import GatewaySettings
from tandem.core.git_command import GitSettings
from tandem.core.llm_settings import LlmSettings
from tandem.core.profiles import Profile
from tandem.core.sdlc_settings import SdlcSettings
from tandem.core.task_settings import TaskSettings

CONFIG_FILE = "tandem.toml"
ENV_PREFIX = "TANDEM_"

_toml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("tandem_toml_path", default=None)
_untrusted_dropped: contextvars.ContextVar[bool] = contextvars.ContextVar("tandem_untrusted_dropped", default=False)

NameList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Every setting Tandem reads; each is a key in ``tandem.toml`` and a ``TANDEM_<KEY>`` variable."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    workspace: Path = Field(default_factory=Path.cwd, description="The root every workspace path is confined to.")
    data_dir: Path = Field(Path(".tandem"), description="Where Tandem keeps its data; relative to the workspace.")
    toolsets: NameList | None = Field(None, description="Toolsets to serve; every built-in but 'conformance' if unset.")
    disabled_toolsets: NameList = Field(default_factory=list, description="Toolsets never to serve.")
    profile: Profile = Field(
        "full", description="Which role this server plays: every toolset, the orchestrator's or the coder's."
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8765, ge=0, le=65535, description="Port the HTTP server binds; 0 picks a free one.")
    stateless_http: bool = Field(False, description="Serve /mcp without sessions, one JSON response per POST.")
    allowed_hosts: NameList = Field(
        default_factory=list, description="Host headers accepted besides loopback (DNS-rebinding guard)."
    )
    allowed_origins: NameList = Field(default_factory=list, description="Origin headers accepted besides loopback.")
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Largest HTTP body or WebSocket message accepted.")
    max_output_chars: int = Field(200_000, gt=0, description="Largest text a tool may return before it is cut.")
    max_sessions: int = Field(1000, gt=0, description="Most concurrent Streamable HTTP sessions.")
    session_idle_timeout: float = Field(1800.0, gt=0, description="Seconds before an idle HTTP session is closed.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Server log level (stderr).")
    auto_restart: bool = Field(True, description="'tandem start': restart the server when it crashes.")
    log_requests: bool = Field(True, description="Log one structured line per request with its correlation id.")
    warm_up: bool = Field(
        True,
        description="When a server starts, prepare in the background what first calls need (the token counter, "
        "detect-secrets, the worker processes), so that a first pack is as quick as a later one.",
    )
    tracing: bool = Field(False, description="Emit OpenTelemetry spans per request (needs an exporter installed).")
    commands: CommandPolicy = Field(
        default_factory=CommandPolicy, description="What commands may run, and their limits ([commands] table)."
    )
    backends: BackendSettings = Field(
        default_factory=BackendSettings, description="Where execute_command may run commands ([backends] table)."
    )
    code: CodeSettings = Field(
        default_factory=CodeSettings, description="Linters, formatters and the test command ([code] table)."
    )
    git: GitSettings = Field(
        default_factory=GitSettings, description="Allowed remotes, hooks and trusted repository config ([git] table)."
    )
    catalog: CatalogSettings = Field(
        default_factory=CatalogSettings,
        description="Where agent, skill and workflow definitions are found; caching and patterns ([catalog] table).",
    )
    tasks: TaskSettings = Field(
        default_factory=TaskSettings, description="Which just recipes run_task may run, and limits ([tasks] table)."
    )
    sdlc: SdlcSettings = Field(
        default_factory=SdlcSettings, description="How strictly the development loop and policy apply ([sdlc] table)."
    )
    gateway: GatewaySettings = Field(
        default_factory=GatewaySettings, description="Upstream MCP servers mounted under a namespace ([gateway] table)."
    )
    llm: LlmSettings = Field(
        default_factory=LlmSettings,
        description="The OpenAI-compatible endpoint asked when the client cannot sample ([llm] table).",
    )
    max_file_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest file the file tools read or write.")
    git_internals_writable: bool = Field(
        False, description="Let file tools move or delete files under .git/ (refused by default)."
    )

    @field_validator("toolsets", "disabled_toolsets", "allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return LOG_LEVEL_ALIASES.get(value, value)
        return value

    @property
    def data_path(self) -> Path:
        return self.data_dir if self.data_dir.is_absolute() else self.workspace / self.data_dir

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SeedAliases(settings_cls), _WorkspaceToml(settings_cls))


LOG_LEVEL_ALIASES = {"warn": "warning", "verbose": "debug", "silly": "debug", "http": "debug", "trace": "debug"}
"""Level names other loggers use (the seed's ``MCP_LOG_LEVEL`` follows winston's), read as Tandem's."""

SEED_ALIASES: dict[str, tuple[str, ...]] = {
    "MCP_PORT": ("port",),
    "MCP_DATA_DIR": ("data_dir",),
    "MCP_LOG_LEVEL": ("log_level",),
    "MCP_CACHE_TTL": ("catalog", "cache_ttl"),
    "MCP_AUTO_RESTART": ("auto_restart",),
}
"""The catalog seed's environment variables and the setting each one stands for."""


class _SeedAliases(PydanticBaseSettingsSource):
    """The seed's ``MCP_*`` variables as the settings they stand for; ``MCP_CACHE_TTL`` sets every cache namespace."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for variable, path in SEED_ALIASES.items():
            value = os.environ.get(variable)
            if value is None or not value.strip():
                continue
            if variable == "MCP_CACHE_TTL":
                data.setdefault("catalog", {})["cache_ttl"] = dict.fromkeys(CacheTtl.model_fields, value.strip())
            else:
                data[path[0]] = value.strip()
        return data


class _WorkspaceToml(PydanticBaseSettingsSource):
    """The ``tandem.toml`` of the workspace being loaded, if there is one."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _toml_path.get()
        found = None if path is None else read_workspace_toml(path.parent)
        if found is None:
            return {}
        content, data = found
        # The file lives in the workspace, so it cannot move the workspace.
        data.pop("workspace", None)
        return _check_trusted(path, content, data)


def read_workspace_toml(root: Path) -> tuple[bytes, dict[str, Any]] | None:
    """The ``tandem.toml`` of the workspace ``root``, as its bytes and parsed; ``None`` when there is none.
    Raises ``ConfigError`` when it cannot be read as TOML."""
    path = root / CONFIG_FILE
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{CONFIG_FILE}: cannot be read: {exc.strerror or exc}") from None
    try:
        return content, tomllib.loads(content.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{CONFIG_FILE}: not valid TOML: {exc}") from None


def _check_trusted(path: Path, content: bytes, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` if the user trusts this ``tandem.toml`` or it sets nothing that needs trust
    (``tandem.workspace_trust``); else a ``ConfigError`` naming the settings, or, where the caller asked for them
    to be left out (``_untrusted_dropped``), ``data`` without them."""
    names = workspace_trust.privileged(data, Settings.model_fields)
    if not names:
        return data
    try:
        trusted = workspace_trust.is_trusted(path.parent, content)
    except workspace_trust.TrustError as exc:
        raise ConfigError(f"{CONFIG_FILE}: {exc}") from None
    if trusted:
        return data
    if _untrusted_dropped.get():
        return workspace_trust.without(data, names)
    raise ConfigError(
        f"{CONFIG_FILE} sets {', '.join(names)}: settings that reach beyond what a client asks for, read from a "
        f"workspace's {CONFIG_FILE} only once you trust it. Read {path}, then run 'tandem trust' in {path.parent} "
        "(again after each change), or remove them (TANDEM_* variables and options are yours and need no trust)"
    )


def workspace_root(workspace: Path | str | None = None) -> Path:
    """The workspace ``load_settings`` would load: ``workspace``, else ``TANDEM_WORKSPACE``, else the current
    directory, resolved. Raises ``ConfigError`` when it is not a directory."""
    root = Path(workspace or os.environ.get(f"{ENV_PREFIX}WORKSPACE") or Path.cwd()).expanduser()
    if not root.is_dir():
        raise ConfigError(f"workspace: {root} is not a directory")
    return root.resolve()


def load_settings(workspace: Path | str | None = None, *, untrusted: bool = False, **overrides: Any) -> Settings:
    """Build the settings for ``workspace`` (``TANDEM_WORKSPACE``, else the current directory).

    ``overrides`` come from the command line and win over everything; ``None`` values are ignored. A workspace's
    ``tandem.toml`` that sets what needs trust, untrusted, is refused, or with ``untrusted`` has those settings
    left out (for commands that start nothing of the file's choosing: ``tandem stop``, ``status``, ``pack``).
    Raises ``ConfigError`` naming the setting and the problem.
    """
    root = workspace_root(workspace)
    token = _toml_path.set(root / CONFIG_FILE)
    dropping = _untrusted_dropped.set(untrusted)
    try:
        settings = Settings(workspace=root, **{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    finally:
        _untrusted_dropped.reset(dropping)
        _toml_path.reset(token)
    _check_data_dir(settings)
    return settings


def _check_data_dir(settings: Settings) -> None:
    """A data directory named inside the workspace must lie there: a repository that commits ``.tandem`` as a
    symbolic link elsewhere would have Tandem write its packs, logs and databases wherever it points."""
    named = Path(os.path.normpath(settings.data_path))
    if named.is_relative_to(settings.workspace) and not named.resolve().is_relative_to(settings.workspace):
        raise ConfigError(
            f"data_dir: {settings.data_dir} is inside the workspace but leads outside it (a symbolic link?); remove "
            "the link, or name the directory you mean with an absolute data_dir"
        )


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        name = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{name}: unknown setting (in {CONFIG_FILE}?); see 'tandem serve --help' for the settings")
        else:
            where = f"{ENV_PREFIX}{name.upper()} or '{name}' in {CONFIG_FILE}"
            aliases = [v for v, path in SEED_ALIASES.items() if tuple(map(str, err["loc"][: len(path)])) == path]
            if aliases and os.environ.get(aliases[0], "").strip():
                where = f"{aliases[0]}, {where}"
            lines.append(f"{name}: {err['msg']} (got {err.get('input')!r}; set by {where})")
    return "invalid settings:\n  " + "\n  ".join(lines)
