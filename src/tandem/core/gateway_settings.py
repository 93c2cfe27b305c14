"""Settings of the gateway toolset (the ``[gateway]`` table): the upstream MCP servers mounted under a
namespace. In the core so the one ``Settings`` object can hold them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class UpstreamSettings(BaseModel):
    """One upstream MCP server (a ``[[gateway.upstreams]]`` entry): a command run as a stdio child process, or
    the URL of a Streamable HTTP endpoint."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$",
        description="The namespace its tools are served under: 'coder' serves 'coder.read_file', ...",
    )
    command: list[str] | None = Field(
        None, min_length=1, description="argv of a stdio MCP server, started in the workspace as a child process."
    )
    url: str | None = Field(None, pattern=r"^https?://", description="A Streamable HTTP MCP endpoint (.../mcp).")
    env: dict[str, str] = Field(default_factory=dict, description="Variables set for the child process.")
    call_timeout_s: float | None = Field(None, gt=0, description="Overrides [gateway] call_timeout_s for this one.")

    @model_validator(mode="after")
    def _one_target(self) -> UpstreamSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"upstream {self.name!r}: give exactly one of 'command' and 'url'")
        return self


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upstreams: list[UpstreamSettings] = Field(
        default_factory=list, description="The upstream MCP servers to mount ([[gateway.upstreams]] entries)."
    )
    default_coder: bool = Field(
        True,
        description="Under profile 'orchestrator' with no upstreams configured, run a coder: this Python running "
        "'-m tandem serve --profile coder --workspace <workspace>' as the 'coder' upstream.",
    )
    start_timeout_s: float = Field(60.0, gt=0, description="How long an upstream has to start and list its tools.")
    call_timeout_s: float = Field(600.0, gt=0, description="How long a forwarded call may take.")
    restart: bool = Field(True, description="Restart an upstream that died or could not be reached.")
    restart_backoff_s: float = Field(
        0.5, ge=0, description="Wait before a restart after a failed start; doubles with each failure in a row."
    )
    restart_backoff_max_s: float = Field(30.0, ge=0, description="The longest wait between restarts.")

    @model_validator(mode="after")
    def _unique_names(self) -> GatewaySettings:
        names = [u.name for u in self.upstreams]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"upstream name(s) {', '.join(doubled)} given more than once")
        return self
