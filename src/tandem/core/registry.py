"""The one registry: tools, resources, resource templates and prompts, grouped into named toolsets.

Toolsets reach the registry through the ``tandem.toolsets`` entry-point group, built-in ones included, so a
third-party package plugs in exactly as ours do.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tandem.core.context import CallContext
from tandem.core.errors import ConfigError, NotFound, ToolError
from tandem.core.schema import Signature, signature_of
from tandem.core.services import ServiceFactory

if TYPE_CHECKING:
    from mcp.shared.uri_template import UriTemplate

    from tandem.config import Settings

ENTRY_POINT_GROUP = "tandem.toolsets"

F = TypeVar("F", bound=Callable[..., Any])
TaskSupport = Literal["forbidden", "optional", "required"]
Hook = Callable[..., Any]
"""A ``before`` hook is ``fn(tool, arguments, ctx)`` and refuses the call by raising ``ToolError``; an ``after``
hook is ``fn(tool, arguments, result, ctx)``. Either may be a coroutine function."""
PromptSource = Callable[[CallContext], "Iterable[Prompt] | Awaitable[Iterable[Prompt]]"]
"""``fn(ctx)`` returns the prompts a toolset knows only at run time (files in the project, say); it may be a
coroutine function."""
WarmUp = Callable[["Settings"], None]
"""``fn(settings)``: what a toolset prepares when a server starts (see ``Toolset.warm_up``)."""

logger = logging.getLogger("tandem.registry")


@dataclass(frozen=True, slots=True)
class ToolAnnotations:
    """Hints a client shows its user before a call; see the MCP spec's ``ToolAnnotations``."""

    read_only: bool = False
    destructive: bool = True
    idempotent: bool = False
    open_world: bool = False


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    signature: Signature
    annotations: ToolAnnotations
    toolset: str
    title: str | None = None
    schema_override: dict[str, Any] | None = None
    task_support: TaskSupport = "forbidden"
    rpc: str | None = None
    """The method name this tool also answers on the plain JSON-RPC API (``POST /``), if any."""

    @property
    def input_schema(self) -> dict[str, Any]:
        """The schema clients see: the one written by hand if the tool gave one, else the one from its hints."""
        return self.schema_override if self.schema_override is not None else self.signature.input_schema

    async def invoke(self, arguments: dict[str, Any] | None, ctx: CallContext) -> Any:
        kwargs = self.signature.bind(arguments, f"tool {self.name!r}")
        return await _call(self.fn, kwargs, self.signature.context_param, ctx)


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource at a fixed URI, or a family of them under a URI template (``template`` is then set)."""

    uri: str
    name: str
    description: str
    mime_type: str
    fn: Callable[..., Any]
    signature: Signature
    toolset: str
    template: UriTemplate | None = None

    def match(self, uri: str) -> dict[str, Any] | None:
        """The template's variables in ``uri``, or ``None`` when it does not match."""
        if self.template is None:
            return {} if uri == self.uri else None
        return self.template.match(uri)

    async def read(self, variables: dict[str, Any], ctx: CallContext) -> str | bytes:
        kwargs = self.signature.bind(variables, f"resource {self.uri!r}")
        return await _call(self.fn, kwargs, self.signature.context_param, ctx)


@dataclass(frozen=True, slots=True)
class PromptArgument:
    name: str
    description: str
    required: bool


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    description: str
    fn: Callable[..., Any]
    signature: Signature
    toolset: str
    title: str | None = None

    @property
    def arguments(self) -> list[PromptArgument]:
        schema = self.signature.input_schema
        required = set(schema.get("required", []))
        return [
            PromptArgument(name, prop.get("description", ""), name in required)
            for name, prop in schema.get("properties", {}).items()
        ]

    async def render(self, arguments: dict[str, Any] | None, ctx: CallContext) -> Any:
        kwargs = self.signature.bind(arguments, f"prompt {self.name!r}")
        return await _call(self.fn, kwargs, self.signature.context_param, ctx)


async def _call(fn: Callable[..., Any], kwargs: dict[str, Any], context_param: str | None, ctx: CallContext) -> Any:
    if context_param is not None:
        kwargs = {**kwargs, context_param: ctx}
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def _doc(fn: Callable[..., Any], description: str | None) -> str:
    return description if description is not None else inspect.cleandoc(fn.__doc__ or "")


@dataclass
class Toolset:
    """A named group of tools, resources and prompts that is enabled or disabled as one.

    A package exposes a ``Toolset`` object under the ``tandem.toolsets`` entry-point group.
    """

    name: str
    description: str = ""
    tools: dict[str, Tool] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    templates: dict[str, Resource] = field(default_factory=dict)
    prompts: dict[str, Prompt] = field(default_factory=dict)
    completions: dict[tuple[str, str], Callable[..., Any]] = field(default_factory=dict)
    service_factory: ServiceFactory | None = None
    before_hooks: list[tuple[tuple[str, ...], Hook]] = field(default_factory=list)
    after_hooks: list[tuple[tuple[str, ...], Hook]] = field(default_factory=list)
    prompt_sources: list[PromptSource] = field(default_factory=list)
    warm_ups: list[WarmUp] = field(default_factory=list)

    def warm_up(self, fn: WarmUp) -> WarmUp:
        """Run ``fn(settings)`` once when a server starts (in a background thread, never for a one-shot command
        such as ``tandem pack``): what the toolset's first call would otherwise spend getting ready, such as loading
        a model or starting worker processes. It must be safe to run while calls are served; a failure is logged
        and costs only the head start."""
        self.warm_ups.append(fn)
        return fn

    def before(self, *tool_names: str) -> Callable[[F], F]:
        """Run ``fn(tool, arguments, ctx)`` before every call of the named tools, whichever toolset serves them; it
        refuses the call by raising ``ToolError`` (a guardrail such as "no commit before validation"). A name
        ``*.tool`` matches that tool under any namespace (``coder.tool``: an upstream's, mounted by the gateway)."""

        def register(fn: F) -> F:
            self.before_hooks.append((tool_names, fn))
            return fn

        return register

    def after(self, *tool_names: str) -> Callable[[F], F]:
        """Run ``fn(tool, arguments, result, ctx)`` after every successful call of the named tools (to observe a
        validation's outcome, say). A hook that raises ``ToolError`` makes that error the call's answer (a guard
        that finds, once the call has run, that it did what it must not, and has undone it); any other failure is
        logged and the call's result stands."""

        def register(fn: F) -> F:
            self.after_hooks.append((tool_names, fn))
            return fn

        return register

    def service(self, fn: ServiceFactory) -> ServiceFactory:
        """Register the toolset's service: ``fn(settings)`` returns a context manager whose value lives as long as
        the server and which tools reach as ``ctx.service(toolset_name)``. A service that serves tools learnt at
        runtime takes ``fn(settings, registry)`` and hands them to ``registry.publish``."""
        self.service_factory = fn
        return fn

    def tool(
        self,
        name: str | None = None,
        *,
        title: str | None = None,
        description: str | None = None,
        read_only: bool = False,
        destructive: bool | None = None,
        idempotent: bool | None = None,
        open_world: bool = False,
        input_schema: dict[str, Any] | None = None,
        task_support: TaskSupport = "forbidden",
        rpc: str | None = None,
    ) -> Callable[[F], F]:
        """Register a function as a tool; its type hints become the input schema, its docstring the description.

        ``input_schema`` publishes a schema written by hand, verbatim (JSON Schema keywords pydantic would not
        produce); the function's hints still validate the arguments. ``task_support`` says whether the tool may run
        as a task that the client polls (``optional``), must (``required``), or never does (``forbidden``).
        ``rpc`` also serves the tool as that method of the plain JSON-RPC API, its structured result as the answer.
        """

        def register(fn: F) -> F:
            tool_name = name or fn.__name__
            if tool_name in self.tools:
                raise ValueError(f"toolset {self.name!r} already has a tool named {tool_name!r}")
            annotations = ToolAnnotations(
                read_only=read_only,
                # A read-only tool neither destroys nor changes anything, so it is idempotent too.
                destructive=(not read_only) if destructive is None else destructive,
                idempotent=read_only if idempotent is None else idempotent,
                open_world=open_world,
            )
            self.tools[tool_name] = Tool(
                name=tool_name,
                title=title,
                description=_doc(fn, description),
                fn=fn,
                signature=signature_of(fn, context_type=CallContext),
                annotations=annotations,
                toolset=self.name,
                schema_override=input_schema,
                task_support=task_support,
                rpc=rpc,
            )
            return fn

        return register

    def completion(self, ref: str, argument: str) -> Callable[[F], F]:
        """Register suggestions for one argument of a prompt (by name) or resource template (by URI template).

        The function takes the typed prefix and the other arguments given so far, and returns candidate values.
        """

        def register(fn: F) -> F:
            self.completions[(ref, argument)] = fn
            return fn

        return register

    def resource(
        self, uri: str, *, name: str | None = None, description: str | None = None, mime_type: str = "text/plain"
    ) -> Callable[[F], F]:
        """Register a function as a resource (a fixed URI) or a resource template (a URI with ``{variables}``)."""

        def register(fn: F) -> F:
            from mcp.shared.uri_template import UriTemplate  # the SDK costs half a second to import; only here

            signature = signature_of(fn, context_type=CallContext)
            common = {
                "name": name or fn.__name__,
                "description": _doc(fn, description),
                "mime_type": mime_type,
                "fn": fn,
                "signature": signature,
                "toolset": self.name,
            }
            if UriTemplate.is_template(uri):
                template = UriTemplate.parse(uri)
                missing = set(template.variable_names) ^ set(signature.arguments.model_fields)
                if missing:
                    raise ValueError(f"resource template {uri!r}: variables and parameters differ on {sorted(missing)}")
                self.templates[uri] = Resource(uri=uri, template=template, **common)  # type: ignore[arg-type]
            else:
                if signature.arguments.model_fields:
                    raise ValueError(f"resource {uri!r} is not a template, so its function takes no arguments")
                self.resources[uri] = Resource(uri=uri, **common)  # type: ignore[arg-type]
            return fn

        return register

    def prompt(
        self, name: str | None = None, *, title: str | None = None, description: str | None = None
    ) -> Callable[[F], F]:
        """Register a function as a prompt; it returns a string (one user message) or a list of messages."""

        def register(fn: F) -> F:
            prompt_name = name or fn.__name__
            self.prompts[prompt_name] = Prompt(
                name=prompt_name,
                title=title,
                description=_doc(fn, description),
                fn=fn,
                signature=signature_of(fn, context_type=CallContext),
                toolset=self.name,
            )
            return fn

        return register

    def prompt_source(self, fn: PromptSource) -> PromptSource:
        """Register ``fn(ctx)``, which returns ``Prompt`` objects known only at run time; it is asked on every
        prompts/list and prompts/get, after the fixed prompts (whose names win)."""
        self.prompt_sources.append(fn)
        return fn


def discover_toolsets() -> dict[str, EntryPoint]:
    """Every toolset installed under the ``tandem.toolsets`` entry-point group, by name (not yet loaded)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_toolset(ep: EntryPoint) -> Toolset:
    """Import one toolset; a broken package stops startup with a message naming it."""
    try:
        toolset = ep.load()
    except Exception as exc:
        raise ConfigError(f"toolset {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(toolset, Toolset):
        raise ConfigError(f"toolset {ep.name!r} ({ep.value}) is not a tandem Toolset")
    if toolset.name != ep.name:
        raise ConfigError(f"entry point {ep.name!r} names a toolset called {toolset.name!r}; the names must match")
    return toolset


def _hooks(hooks: dict[str, list[Hook]], name: str) -> list[Hook]:
    """The hooks of tool ``name``; a namespaced tool (``coder.git_commit``) also gets those of ``*.git_commit``."""
    found = list(hooks.get(name, ()))
    if "." in name:
        found += hooks.get("*." + name.rsplit(".", 1)[1], ())
    return found


class Registry:
    """The tools, resources and prompts of the enabled toolsets; every transport serves this one object."""

    def __init__(self, toolsets: Iterable[Toolset]) -> None:
        self.toolsets: dict[str, Toolset] = {}
        self.tools: dict[str, Tool] = {}
        self.resources: dict[str, Resource] = {}
        self.templates: dict[str, Resource] = {}
        self.prompts: dict[str, Prompt] = {}
        self.completions: dict[tuple[str, str], Callable[..., Any]] = {}
        self.services: dict[str, ServiceFactory] = {}
        self.rpc_methods: dict[str, Tool] = {}
        self.before_hooks: dict[str, list[Hook]] = {}
        self.after_hooks: dict[str, list[Hook]] = {}
        self.published: dict[str, dict[str, Tool]] = {}
        """The tools each toolset published at runtime (see ``publish``), by toolset name."""
        self.revision = 0
        """Counts the changes ``publish`` made, so that a transport knows when to list the tools again."""
        self.publishers: set[str] = set()
        """The toolsets whose service may publish tools at runtime."""
        self.prompt_sources: list[PromptSource] = []
        self.warm_ups: list[WarmUp] = []
        for toolset in toolsets:
            self.add(toolset)

    @classmethod
    def from_entry_points(cls, enabled: Iterable[str] | None = None, disabled: Iterable[str] = ()) -> Registry:
        """The installed toolsets named in ``enabled`` (all but ``conformance`` when ``None``), less ``disabled``."""
        available = discover_toolsets()
        # Default order is stable across installs: the server toolset first, then by name.
        default = sorted((n for n in available if n != "conformance"), key=lambda n: (n != "server", n))
        wanted = default if enabled is None else list(enabled)
        unknown = sorted(set(wanted) - available.keys())
        if unknown:
            raise ConfigError(
                f"toolsets: unknown toolset(s) {', '.join(unknown)}; installed: {', '.join(sorted(available))}"
            )
        skip = set(disabled)
        return cls(load_toolset(available[n]) for n in wanted if n not in skip)

    def add(self, toolset: Toolset) -> None:
        if toolset.name in self.toolsets:
            raise ValueError(f"toolset {toolset.name!r} is registered twice")
        for kind, mine, theirs in (
            ("tool", self.tools, toolset.tools),
            ("resource", self.resources, toolset.resources),
            ("resource template", self.templates, toolset.templates),
            ("prompt", self.prompts, toolset.prompts),
            ("completion", self.completions, toolset.completions),
        ):
            clash = mine.keys() & theirs.keys()
            if clash:
                raise ValueError(f"toolset {toolset.name!r} redefines {kind}(s) {sorted(clash)}")
        rpc = {tool.rpc: tool for tool in toolset.tools.values() if tool.rpc}
        clash = self.rpc_methods.keys() & rpc.keys()
        if clash:
            raise ValueError(f"toolset {toolset.name!r} redefines JSON-RPC method(s) {sorted(clash)}")
        self.toolsets[toolset.name] = toolset
        self.rpc_methods.update(rpc)
        if toolset.service_factory is not None:
            factory = toolset.service_factory
            if len(inspect.signature(factory).parameters) >= 2:
                factory = functools.partial(factory, registry=self)
                self.publishers.add(toolset.name)
            self.services[toolset.name] = factory
        self.tools.update(toolset.tools)
        self.resources.update(toolset.resources)
        self.templates.update(toolset.templates)
        self.prompts.update(toolset.prompts)
        self.completions.update(toolset.completions)
        self.prompt_sources.extend(toolset.prompt_sources)
        self.warm_ups.extend(toolset.warm_ups)
        for mine, theirs in ((self.before_hooks, toolset.before_hooks), (self.after_hooks, toolset.after_hooks)):
            for names, hook in theirs:
                for name in names:
                    mine.setdefault(name, []).append(hook)

    def start_warm_up(self, settings: Settings) -> threading.Thread | None:
        """Run the toolsets' warm-ups one after another in a daemon thread (see ``Toolset.warm_up``), unless
        ``settings.warm_up`` is off; the thread, to wait on if need be."""
        if not settings.warm_up or not self.warm_ups:
            return None

        def run() -> None:
            for fn in self.warm_ups:
                try:
                    fn(settings)
                except Exception:  # a warm-up only saves time: the call it prepares for will meet the error itself
                    logger.warning("warm-up %s failed", getattr(fn, "__qualname__", fn), exc_info=True)

        thread = threading.Thread(target=run, name="tandem-warm-up", daemon=True)
        thread.start()
        return thread

    def publish(self, toolset: str, tools: Iterable[Tool]) -> None:
        """Serve ``tools`` for ``toolset`` from now on, in place of those it published before: tools learnt at
        runtime (an upstream server's, mounted by the gateway). They are called, and their hooks run, like any
        other. Safe from another thread: readers see the old mapping or the new one, never a half-built one."""
        new = {tool.name: tool for tool in tools}
        old = self.published.get(toolset, {})
        clash = new.keys() & (self.tools.keys() - old.keys())
        if clash:
            raise ValueError(f"toolset {toolset!r} publishes tool(s) {sorted(clash)} that another toolset serves")
        self.tools = {**{n: t for n, t in self.tools.items() if n not in old}, **new}
        self.published = {**self.published, toolset: new}
        self.revision += 1

    async def invoke(self, tool: Tool, arguments: dict[str, Any] | None, ctx: CallContext) -> Any:
        """Call ``tool`` as every transport does: its ``before`` hooks (which may refuse), the tool, its ``after``
        hooks."""
        for hook in _hooks(self.before_hooks, tool.name):
            outcome = hook(tool, arguments or {}, ctx)
            if inspect.isawaitable(outcome):
                await outcome
        result = await tool.invoke(arguments, ctx)
        refusal: ToolError | None = None
        for hook in _hooks(self.after_hooks, tool.name):
            try:
                outcome = hook(tool, arguments or {}, result, ctx)
                if inspect.isawaitable(outcome):
                    await outcome
            except ToolError as exc:
                refusal = refusal or exc
            except Exception:
                logger.exception("after-hook %s of tool %s failed", getattr(hook, "__qualname__", hook), tool.name)
        if refusal is not None:
            raise refusal
        return result

    def tool(self, name: str) -> Tool:
        try:
            return self.tools[name]
        except KeyError:
            raise NotFound(f"Unknown tool: {name!r}. Call tools/list to see what this server serves.") from None

    def prompt(self, name: str) -> Prompt:
        try:
            return self.prompts[name]
        except KeyError:
            raise NotFound(f"Unknown prompt: {name!r}. Call prompts/list to see what this server serves.") from None

    async def runtime_prompts(self, ctx: CallContext) -> list[Prompt]:
        """The prompts the toolsets' prompt sources serve now. A name already taken is skipped, and a source that
        fails is logged and skipped, so that one bad source leaves the other prompts listed."""
        found: dict[str, Prompt] = {}
        for source in self.prompt_sources:
            try:
                prompts = source(ctx)
                if inspect.isawaitable(prompts):
                    prompts = await prompts
                listed = list(prompts)
            except Exception:
                logger.exception("prompt source %s failed", getattr(source, "__qualname__", source))
                continue
            for prompt in listed:
                if prompt.name in self.prompts or prompt.name in found:
                    logger.warning("prompt %r of toolset %s is already served; skipped", prompt.name, prompt.toolset)
                    continue
                found[prompt.name] = prompt
        return list(found.values())

    async def find_prompt(self, name: str, ctx: CallContext) -> Prompt:
        """The fixed prompt ``name``, else the one a prompt source serves now."""
        if name in self.prompts or not self.prompt_sources:
            return self.prompt(name)
        for prompt in await self.runtime_prompts(ctx):
            if prompt.name == name:
                return prompt
        return self.prompt(name)

    async def complete(self, ref: str, argument: str, value: str, context: dict[str, str]) -> list[str]:
        """Suggestions for ``argument`` of the prompt or resource template ``ref``; none when it has no completer."""
        completer = self.completions.get((ref, argument))
        if completer is None:
            return []
        result = completer(value, context)
        if inspect.isawaitable(result):
            result = await result
        return [str(v) for v in result]

    def find_resource(self, uri: str) -> tuple[Resource, dict[str, Any]]:
        """The resource at ``uri``, or the first template that matches it with its variables."""
        if uri in self.resources:
            return self.resources[uri], {}
        for template in self.templates.values():
            variables = template.match(uri)
            if variables is not None:
                return template, variables
        raise NotFound(f"Unknown resource: {uri!r}. Call resources/list and resources/templates/list.")
