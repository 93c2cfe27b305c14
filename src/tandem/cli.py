"""The ``tandem`` command: a thin face over the library."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import logging
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from tandem import __version__
from tandem.config import Settings, load_settings
from tandem.core import CallContext, ConfigError, InvalidArguments, NotFound, Registry, ToolError
from tandem.core.profiles import toolsets_for

app = typer.Typer(
    name="tandem",
    help="Tandem: an MCP server that gives AI coding assistants a brain and hands for a real codebase.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

WorkspaceOpt = Annotated[
    Path | None, typer.Option("--workspace", "-w", help="Workspace root (default: TANDEM_WORKSPACE, else the cwd).")
]
ToolsetsOpt = Annotated[
    str | None, typer.Option("--toolsets", help="Comma-separated toolsets to serve (default: all but conformance).")
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="full (every toolset), orchestrator (the brain, with a coder mounted as an upstream) or coder (the "
        "hands); picks the toolsets when --toolsets is not given.",
    ),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"tandem: {message}", err=True)
    return typer.Exit(code)


def _run(func: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Run the server's event loop: uvloop where it is installed (it is on Linux and macOS), else asyncio's own."""
    uvloop = importlib.util.find_spec("uvloop") is not None
    # Everything loaded so far (modules, schemas, the registry) lives as long as the process: keep the collector
    # from walking it again on every full collection, which would stall every request in flight.
    gc.freeze()
    anyio.run(func, *args, backend_options={"use_uvloop": uvloop})


def _settings(workspace: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(workspace, **overrides)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _registry(settings: Settings) -> Registry:
    try:
        return Registry.from_entry_points(toolsets_for(settings), settings.disabled_toolsets)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tandem {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Tandem: an MCP server that gives AI coding assistants a brain and hands for a real codebase."""


@app.command()
def serve(
    http: Annotated[bool, typer.Option("--http", help="Serve /mcp, /sse, /ws and /health over HTTP.")] = False,
    host: Annotated[str | None, typer.Option(help="HTTP bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 8765; 0 picks a free one).")] = None,
    stateless: Annotated[
        bool | None, typer.Option("--stateless/--stateful", help="Serve /mcp without sessions (JSON responses).")
    ] = None,
    toolsets: ToolsetsOpt = None,
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
) -> None:
    """Run the MCP server: on stdio (the default, for clients that spawn it) or over HTTP with --http."""
    settings = _settings(
        workspace,
        host=host,
        port=port,
        stateless_http=stateless,
        toolsets=toolsets,
        profile=profile,
        log_level=log_level,
    )
    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from tandem.daemon import die_with_supervisor

    die_with_supervisor()
    registry = _registry(settings)
    if registry.start_warm_up(settings) is None:  # started before the MCP SDK's import, which takes half a second
        from tandem import fork_server

        fork_server.withdraw()  # started ahead by tandem/__main__.py for a warm-up these settings do not want
    from tandem.server import TandemServer

    tandem = TandemServer(registry, settings)
    toolset_names = ", ".join(tandem.registry.toolsets) or "none"
    if not http:
        from tandem.transports.stdio import serve_stdio

        typer.echo(
            f"Tandem {__version__} serving MCP on stdio; workspace {settings.workspace}; toolsets {toolset_names}",
            err=True,
        )
        _run(serve_stdio, tandem)
        return
    from tandem.transports.http import ServeError, serve_http

    def ready(url: str) -> None:
        mode = "stateless" if settings.stateless_http else "stateful"
        typer.echo(
            f"Tandem {__version__} listening on {url} (/mcp {mode}, /sse, /ws, /health); "
            f"workspace {settings.workspace}; toolsets {toolset_names}",
            err=True,
        )

    try:
        _run(serve_http, tandem, ready)
    except ServeError as exc:
        raise _fail(str(exc), code=1) from None


HostOpt = Annotated[str | None, typer.Option(help="HTTP bind address (default 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option(help="HTTP port (default 8765; 0 picks a free one).")]
LogLevelOpt = Annotated[str | None, typer.Option(help="debug, info, warning or error.")]


def _daemon_args(settings: Settings, **given: Any) -> list[str]:
    """The options ``tandem supervise`` (and so its ``serve``) gets: the workspace, and each option ``given`` here
    (``log_level=`` is ``--log-level``) that was not left out (``None``)."""
    args = ["--workspace", str(settings.workspace)]
    for name, value in given.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    return args


@app.command()
def start(
    host: HostOpt = None,
    port: PortOpt = None,
    toolsets: ToolsetsOpt = None,
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = None,
    log_level: LogLevelOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the server to be healthy.")] = 60.0,
) -> None:
    """Start the HTTP server as a background daemon (pid file, daily-rotated log, restarted if it crashes)."""
    from tandem import daemon

    settings = _settings(workspace, host=host, port=port, toolsets=toolsets, profile=profile, log_level=log_level)
    files = daemon.DaemonFiles(settings.data_path)
    if (pid := files.running_pid()) is not None:
        url = files.read_state().get("url")
        typer.echo(f"tandem: already running (pid {pid}) at {url}; 'tandem stop' first to restart it")
        return
    try:
        given = _daemon_args(settings, host=host, port=port, toolsets=toolsets, profile=profile, log_level=log_level)
        state = daemon.start(files, given, timeout)
    except daemon.DaemonError as exc:
        raise _fail(str(exc), code=1) from None
    typer.echo(
        f"tandem: started at {state['url']} (supervisor pid {state['supervisor_pid']}, "
        f"server pid {state['server_pid']}); log {state['log']}"
    )


@app.command()
def stop(workspace: WorkspaceOpt = None) -> None:
    """Stop the daemon: the server finishes the requests in flight, flushes and closes its database."""
    from tandem import daemon

    files = daemon.DaemonFiles(_settings(workspace, untrusted=True).data_path)
    try:
        pid = daemon.stop(files)
    except daemon.DaemonError as exc:
        raise _fail(str(exc), code=1) from None
    typer.echo("tandem: not running" if pid is None else f"tandem: stopped (pid {pid})")


@app.command()
def status(
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state, /health and /metrics as JSON.")] = False,
) -> None:
    """Whether the daemon runs, its health and a metrics summary. Exit code 0 healthy, 1 unhealthy, 3 stopped."""
    from tandem import daemon

    report = daemon.status(daemon.DaemonFiles(_settings(workspace, untrusted=True).data_path))
    if as_json:
        typer.echo(json.dumps(report if report is not None else {"status": "stopped"}, indent=2))
    elif report is None:
        typer.echo("tandem: not running")
    else:
        typer.echo(
            "\n".join(f"tandem: {line}" if n == 0 else f"  {line}" for n, line in enumerate(daemon.summary(report)))
        )
    if report is None:
        raise typer.Exit(3)
    if daemon.unhealthy(report) is not None:
        raise typer.Exit(1)


@app.command()
def trust(
    workspace: WorkspaceOpt = None,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Forget that this workspace's tandem.toml is trusted.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Trust without asking (after reading the file).")] = False,
) -> None:
    """Show the settings of this workspace's tandem.toml that reach beyond what a client asks for (upstream
    servers Tandem starts, the LLM endpoint it sends to, the address it listens on, the command policy, execution
    backends, git hooks and remotes, paths outside the workspace), then trust the file as it is now. Trust covers
    this file's text, not the programs it names; a change to it needs trusting again."""
    from tandem import workspace_trust
    from tandem.config import CONFIG_FILE, Settings, read_workspace_toml, workspace_root

    try:
        root = workspace_root(workspace)
        if revoke:
            gone = workspace_trust.revoke(root)
            typer.echo(f"tandem: {CONFIG_FILE} of {root} is {'no longer' if gone else 'not'} trusted")
            return
        path, found = root / CONFIG_FILE, read_workspace_toml(root)
        if found is None:
            raise _fail(f"no {CONFIG_FILE} in {root}: nothing to trust")
        content, data = found
        names = workspace_trust.privileged(data, Settings.model_fields)
        if not names:
            typer.echo(f"tandem: {path} sets nothing that needs trust; not recorded")
            return
        typer.echo(f"{path} sets:")
        for name in names:
            key, _, sub = name.partition(".")
            typer.echo(f"  {name} = {workspace_trust.shown(data[key][sub] if sub else data[key])}")
        if not yes and not typer.confirm("Trust this file as it is now?", default=False):
            raise _fail("not trusted", code=1)
        workspace_trust.trust(root, content)
    except (ConfigError, workspace_trust.TrustError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"tandem: trusted {path} as it is now (sha256 {workspace_trust.digest(content)[:16]}...)")


@app.command()
def init(
    host: HostOpt = None,
    port: PortOpt = None,
    toolsets: ToolsetsOpt = None,
    workspace: WorkspaceOpt = None,
    no_start: Annotated[bool, typer.Option("--no-start", help="Check and write the configuration only.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the server to be healthy.")] = 60.0,
) -> None:
    """Set Tandem up for this workspace: check the machine, start the daemon, verify its health, and write the
    Claude Code (.mcp.json) and Claude Desktop configuration. Exit code 1 when a required check fails."""
    from tandem import daemon, onboard

    settings = _settings(workspace, host=host, port=port, toolsets=toolsets)
    files = daemon.DaemonFiles(settings.data_path)
    running = files.read_state().get("url") if files.running_pid() is not None else None
    typer.echo(f"Tandem {__version__} in {settings.workspace}")
    checks = onboard.check_environment(settings, daemon_url=running)
    for check in checks:
        typer.echo(f"  [{check.mark}] {check.name}: {check.detail}")
    if failed := [c.name for c in checks if c.required and not c.ok]:
        raise _fail(f"cannot continue: fix {', '.join(failed)} (above), then run 'tandem init' again", code=1)
    url = running or f"http://{settings.host}:{settings.port}"
    if not no_start:
        if running is None:
            try:
                given = _daemon_args(settings, host=host, port=port, toolsets=toolsets)
                url = daemon.start(files, given, timeout)["url"]
            except daemon.DaemonError as exc:
                raise _fail(str(exc), code=1) from None
            typer.echo(f"started the daemon at {url} (log {files.log})")
        else:
            typer.echo(f"the daemon already runs at {url}")
        report = daemon.status(files)
        if (why := daemon.unhealthy(report)) is not None:
            raise _fail(f"the daemon is not healthy: {why}; see {files.log}", code=1)
        typer.echo("\n".join(f"  {line}" for line in daemon.summary(report)[3:]))
    try:
        written, action = onboard.write_claude_code_config(settings.workspace, url)
    except onboard.InitError as exc:
        raise _fail(str(exc), code=1) from None
    typer.echo(f"Claude Code: {written} {action} (mcpServers.tandem -> {url}/mcp)")
    snippet = onboard.write_desktop_snippet(settings)
    typer.echo(f"Claude Desktop: merge {snippet} into {onboard.desktop_config_path()} and restart Claude Desktop")
    if no_start:
        typer.echo("not started (--no-start): run 'tandem start' before the client connects")


@app.command(hidden=True)
def supervise(
    host: HostOpt = None,
    port: PortOpt = None,
    toolsets: ToolsetsOpt = None,
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """The daemon's supervisor (what 'tandem start' runs): keeps 'tandem serve --http' running."""
    from tandem import daemon

    settings = _settings(workspace, host=host, port=port, toolsets=toolsets, profile=profile, log_level=log_level)
    given = _daemon_args(settings, host=host, port=port, toolsets=toolsets, profile=profile, log_level=log_level)
    serve_args = ["serve", "--http", *given]
    supervisor = daemon.Supervisor(
        daemon.DaemonFiles(settings.data_path),
        serve_args,
        auto_restart=settings.auto_restart,
        workspace=settings.workspace,
    )
    raise typer.Exit(supervisor.run())


@app.command()
def agent(
    socket: Annotated[Path, typer.Option(help="The socket to listen on (mount it into the server's container).")],
    workspace: WorkspaceOpt = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
) -> None:
    """Run a host agent: commands a Tandem server sends over SOCKET run here, under this workspace's policy.

    Set TANDEM_AGENT_TOKEN to require the same token from the server ([backends.host_agent] token).
    """
    settings = _settings(workspace, log_level=log_level)
    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from tandem.core import CommandRunner
    from tandem.core.backends.host_agent import serve_agent

    token = os.environ.get("TANDEM_AGENT_TOKEN") or None
    typer.echo(f"Tandem {__version__} host agent on {socket}; workspace {settings.workspace}", err=True)
    try:
        _run(serve_agent, socket, CommandRunner(settings.workspace, settings.commands), token)
    except ToolError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


@app.command()
def tools(
    toolsets: ToolsetsOpt = None,
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: each tool with its schemas.")] = False,
) -> None:
    """List what the registry serves, by toolset."""
    registry = _registry(_settings(workspace, toolsets=toolsets, profile=profile))
    if as_json:
        out = {
            name: [
                {
                    "name": t.name,
                    "description": t.description,
                    "inputSchema": t.signature.input_schema,
                    "outputSchema": t.signature.output_schema,
                }
                for t in ts.tools.values()
            ]
            for name, ts in registry.toolsets.items()
        }
        typer.echo(json.dumps(out, indent=2))
        return
    for name, ts in registry.toolsets.items():
        typer.echo(f"{name}: {ts.description}")
        for t in ts.tools.values():
            summary = t.description.splitlines()[0] if t.description else ""
            typer.echo(f"  {t.name:<28} {summary}")
        extras = [f"{len(ts.resources) + len(ts.templates)} resources"] if ts.resources or ts.templates else []
        extras += [f"{len(ts.prompts)} prompts"] if ts.prompts else []
        if extras:
            typer.echo(f"  ({', '.join(extras)})")


@app.command()
def call(
    tool: Annotated[str, typer.Argument(help="The tool to call.")],
    arguments: Annotated[
        list[str] | None, typer.Argument(help="key=value pairs; a value that parses as JSON is taken as JSON.")
    ] = None,
    toolsets: ToolsetsOpt = None,
    profile: ProfileOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Call a tool in-process and print its result."""
    settings = _settings(workspace, toolsets=toolsets, profile=profile)
    wire = _invoke(settings, _registry(settings), tool, _parse_arguments(arguments or []))
    if as_json:
        typer.echo(json.dumps(wire, indent=2, ensure_ascii=False))
        return
    if "structuredContent" in wire:
        typer.echo(json.dumps(wire["structuredContent"], indent=2, ensure_ascii=False))
        return
    for block in wire.get("content", []):
        typer.echo(block.get("text") if block.get("type") == "text" else json.dumps(block))


catalog_app = typer.Typer(help="The catalog of agents, skills and workflows.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("savings")
def catalog_savings(
    queries: Annotated[
        Path | None,
        typer.Option(help="YAML list of {kind, capability?, role?, context?} (default: a built-in everyday set)."),
    ] = None,
    encoding: Annotated[str, typer.Option(help="The tiktoken encoding: o200k_base or cl100k_base.")] = "o200k_base",
    limit: Annotated[int, typer.Option(min=1, max=20, help="Answers per query, as a client would ask.")] = 5,
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Tokens of the full agent / skill / command listing a client carries every turn, against the catalog's tool
    definitions plus the answers to a query set: per query and in total, counted with a real tokenizer."""
    import tempfile

    from tandem.core.tokens import ENCODINGS
    from tandem.toolsets.catalog.savings import SavingsError, load_queries, measure, report
    from tandem.toolsets.catalog.service import Catalog

    if encoding not in ENCODINGS:
        raise _fail(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    settings = _settings(workspace)
    try:
        query_set = load_queries(queries)
    except SavingsError as exc:
        raise _fail(str(exc)) from None
    tools = list(Registry.from_entry_points(["catalog"], []).toolsets["catalog"].tools.values())
    # A scratch database: measuring must not add to the workspace's query log or patterns.
    with tempfile.TemporaryDirectory(prefix="tandem-savings-") as scratch:
        catalog = Catalog(settings.workspace, Path(scratch), settings.catalog).start(background=False)
        try:
            if not any(catalog.current.counts().values()):
                raise _fail(f"nothing indexed in {settings.workspace}: no agents, skills or workflows found", code=1)
            figures = measure(catalog, tools, query_set, limit=limit, encoding=encoding)  # type: ignore[arg-type]
        finally:
            catalog.close()
    typer.echo(json.dumps(figures.as_dict(), indent=2) if as_json else "\n".join(report(figures)))


@contextlib.contextmanager
def _tool_errors(tool: str) -> Iterator[None]:
    """A call made on the command line: bad arguments exit 2, a tool error exits 1, each with its message."""
    try:
        yield
    except (NotFound, InvalidArguments) as exc:
        raise _fail(str(exc)) from None
    except ToolError as exc:
        raise _fail(f"{tool}: {exc}", code=1) from None


def _invoke(settings: Settings, registry: Registry, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Call ``tool`` in-process, as a client would over MCP; its result as the wire's JSON. Errors exit."""
    from tandem.server import TandemServer

    tandem = TandemServer(registry, settings)
    with _tool_errors(tool), tandem.services.held() as services:
        found = registry.tool(tool)  # once the services run: the gateway publishes its upstreams' tools
        context = CallContext(
            workspace=settings.workspace, settings=settings, server_status=tandem.status, services=services
        )
        result = anyio.run(registry.invoke, found, args, context)
    return tandem.tool_result(result).model_dump(mode="json", by_alias=True, exclude_none=True)


def _invoke_local(settings: Settings, registry: Registry, tool: str, args: dict[str, Any]) -> Any:
    """Call ``tool`` in-process without the MCP server around it (whose SDK costs half a second to import, which
    ``tandem pack`` cannot afford); its result as the tool returned it. Errors exit."""
    from tandem.core.services import Services

    with _tool_errors(tool), Services(registry.services, settings).held() as services:
        context = CallContext(workspace=settings.workspace, settings=settings, services=services)
        outcome: list[Any] = []

        async def call() -> None:
            # The result is handed over here, not returned: asyncio's runner formats the finished task (result
            # included) when it restores the SIGINT handler, which for a pack is a repr of megabytes.
            outcome.append(await registry.invoke(registry.tool(tool), args, context))

        anyio.run(call)
        return outcome[0]


_PACK_SUFFIX = {"xml": ".xml", "markdown": ".md", "plain": ".txt", "json": ".json"}


@app.command()
def pack(
    path: Annotated[str, typer.Argument(help="Directory or file of the workspace to pack.")] = ".",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write it (default: tandem-pack.<style> here).")
    ] = None,
    style: Annotated[str, typer.Option(help="xml, markdown, plain or json.")] = "xml",
    include: Annotated[list[str] | None, typer.Option(help="Only files matching this glob (repeatable).")] = None,
    ignore: Annotated[list[str] | None, typer.Option(help="Leave out this glob too (repeatable).")] = None,
    line_numbers: Annotated[bool, typer.Option("--line-numbers", help="Number each file's lines.")] = False,
    compress: Annotated[
        bool, typer.Option("--compress", help="Keep signatures, imports, types and docstrings; drop function bodies.")
    ] = False,
    token_budget: Annotated[
        int | None, typer.Option(help="Split into files of at most this many tokens (-1, -2, ... before the suffix).")
    ] = None,
    encoding: Annotated[str, typer.Option(help="o200k_base or cl100k_base.")] = "o200k_base",
    secret_scan: Annotated[
        bool, typer.Option("--secret-scan/--no-secret-scan", help="Leave out files detect-secrets flags.")
    ] = True,
    workspace: WorkspaceOpt = None,
) -> None:
    """Pack the codebase into one file for a model (what the pack_codebase tool returns), with token counts."""
    from tandem.toolsets.context.store import PackStore

    # A pack reads the workspace and starts nothing of the file's choosing: settings an untrusted tandem.toml may
    # not set are left out rather than refused, so packing a repository just cloned needs no 'tandem trust'.
    settings = _settings(workspace, toolsets="context", untrusted=True)
    args: dict[str, Any] = {"path": path, "style": style, "line_numbers": line_numbers, "encoding": encoding}
    args["leave_out_secrets"] = secret_scan
    args["compress"] = compress
    args |= {k: v for k, v in (("include", include), ("ignore", ignore), ("token_budget", token_budget)) if v}
    result = _invoke_local(settings, _registry(settings), "pack_codebase", args)
    stats = result.structured
    target = output or Path(f"tandem-pack{_PACK_SUFFIX.get(style, '.txt')}")
    stored = PackStore(settings.data_path / "packs").get(stats["pack_id"])
    # Written byte for byte as counted (no newline translated); a split pack's parts each exactly its lines.
    written = [target]
    if parts := stats.get("parts"):
        lines = stored.lines()
        written = [target.with_name(f"{target.stem}-{n}{target.suffix}") for n in range(1, len(parts) + 1)]
        for where, part in zip(written, parts, strict=True):
            chosen = lines[part["start_line"] - 1 : part["end_line"]]
            where.write_bytes("".join(f"{line}\n" for line in chosen).encode())
    else:  # copied as stored (no decode and encode again); to a pipe too (-o /dev/stdout)
        with stored.text_path.open("rb") as packed, target.open("wb") as out:
            shutil.copyfileobj(packed, out, 1 << 20)
    typer.echo(result.content[0].text)
    typer.echo(f"written: {', '.join(map(str, written))}")
    _finish_fast.append(True)


def _parse_arguments(pairs: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _fail(f"argument {pair!r} is not key=value")
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


_finish_fast: list[bool] = []
"""Set by commands that end the process (``tandem pack``): what they built is not freed one object at a time."""


def main() -> None:
    try:
        app()
    except SystemExit as done:
        if not _finish_fast:
            if "tandem.fork_server" in sys.modules:
                # One started ahead by tandem/__main__.py and still importing would hold this process's output
                # open after it exits (a server refused at startup, say).
                sys.modules["tandem.fork_server"].stop()
            raise
        # The interpreter's teardown frees the tokenizer and every module, object by object: a third of a second
        # a one-shot command does not need to spend once its output is written.
        from tandem import fork_server
        from tandem.core import result_cache, worker_processes

        worker_processes.shutdown(wait=True)
        fork_server.stop()
        result_cache.flush_all()  # the counts and verdicts a later pack finds: written before the process ends
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(done.code if isinstance(done.code, int) else 0 if done.code is None else 1)
