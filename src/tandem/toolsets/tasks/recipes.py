"""The project's justfile, read the way just itself reads it (``just --dump --dump-format json``), and
``list_tasks``.

The justfile is found as just finds it (a file named ``justfile`` in any letter case, or ``.justfile``, in the
workspace root; two candidates are an error), but never above the workspace root, where just would go on looking.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tandem.core import CallContext, CommandResult, ToolError
from tandem.core.commands import installed_program
from tandem.core.task_settings import TaskSettings
from tandem.toolsets.tasks.toolset import toolset

DUMP_TIMEOUT_S = 30.0
MAX_DUMP_BYTES = 16 * 1024 * 1024
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
"""just's identifier grammar: what a recipe, module or alias may be called."""


class Parameter(BaseModel):
    name: str
    kind: Literal["singular", "plus", "star"] = Field(
        description="singular: one value; plus (+name): one or more; star (*name): zero or more."
    )
    default: str | None = Field(None, description="The default value (an expression as just would write it).")
    option: str | None = Field(None, description="The option that sets it ('--level' or '-l'), when it has one.")
    flag: bool = Field(False, description="The option takes no value (it sets a fixed one).")

    @property
    def required(self) -> bool:
        return self.default is None and self.kind != "star"


class Recipe(BaseModel):
    name: str = Field(description="What run_task takes: 'recipe', or 'module::recipe' for a module's recipe.")
    doc: str | None = None
    parameters: list[Parameter] = Field(default_factory=list)
    dependencies: list[str] = Field(default_factory=list, description="Recipes that run first.")
    private: bool = False
    quiet: bool = Field(False, description="just does not echo the recipe's lines.")
    confirm: bool = Field(False, description="The recipe asks for confirmation before it runs ([confirm]).")
    groups: list[str] = Field(default_factory=list)
    attributes: list[str] = Field(default_factory=list, description="Other attributes (no-cd, linux, parallel...).")
    allowed: bool = Field(description="Whether run_task may run it under the [tasks] allow-list.")

    def usage(self) -> str:
        words = [self.name]
        for p in self.parameters:
            shown = p.option or p.name
            if not p.flag and p.option:
                shown += f" {p.name.upper()}"
            shown = {"plus": f"{shown}...", "star": f"[{shown}...]"}.get(p.kind, shown)
            words.append(f"[{shown}={p.default}]" if p.default is not None else shown)
        return " ".join(words)


class TaskList(BaseModel):
    justfile: str
    recipes: list[Recipe]
    aliases: dict[str, str] = Field(default_factory=dict, description="Alias -> the recipe it runs.")
    hidden_private: int = Field(0, description="Private recipes left out (include_private=true lists them).")

    def summary(self) -> str:
        lines = [f"{len(self.recipes)} recipes in {self.justfile}"]
        for recipe in self.recipes:
            notes = [n for n, on in (("private", recipe.private), ("not allowed", not recipe.allowed)) if on]
            line = recipe.usage() + (f"  # {recipe.doc}" if recipe.doc else "")
            lines.append(line + (f"  ({', '.join(notes)})" if notes else ""))
        if self.hidden_private:
            lines.append(f"({self.hidden_private} private recipes not shown)")
        return "\n".join(lines)


@dataclass
class Justfile:
    """A justfile as just read it: where it is, and its recipes (modules' too) and aliases by name."""

    path: Path
    shown: str
    recipes: dict[str, Recipe]
    aliases: dict[str, str]


def just_binary() -> str:
    """The ``just`` program: the one installed next to this Python (the rust-just package), else the one on PATH."""
    found = installed_program("just")
    if found is None:
        raise ToolError("the 'just' program is not installed: install the rust-just package (pip install rust-just)")
    return found


def without_just_variables(name: str) -> bool:
    """Whether a variable of the server's environment is kept from just: its ``JUST_*`` settings would change
    which justfile it reads and how it runs (``JUST_DOTENV_COMMAND``, ``JUST_SHELL``...)."""
    return name.upper().startswith("JUST_")


def find_justfile(ctx: CallContext, settings: TaskSettings) -> Path:
    """The justfile in the workspace root, or the one ``[tasks] justfile`` names (confined to the workspace)."""
    if settings.justfile is not None:
        path = ctx.path(settings.justfile)
        if not path.is_file():
            raise ToolError(f"the justfile {settings.justfile!r} set in [tasks] justfile does not exist")
        return path
    with os.scandir(ctx.workspace) as entries:
        candidates = sorted(e.name for e in entries if e.name.lower() in ("justfile", ".justfile"))
    if not candidates:
        raise ToolError(
            "this workspace has no justfile (a file named 'justfile' or '.justfile' in its root); create one, "
            "or name it in [tasks] justfile in tandem.toml"
        )
    if len(candidates) > 1:
        raise ToolError(f"the workspace root has more than one justfile ({', '.join(candidates)}); keep one")
    path = ctx.path(candidates[0])
    if not path.is_file():
        raise ToolError(f"{candidates[0]!r} is not a file")
    return path


def _expression(value: Any) -> str:
    """A default value from just's JSON dump, written back roughly as just would write it."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        head, *rest = value
        if head == "variable" and rest:
            return str(rest[0])
        if head == "call" and rest:
            return f"{rest[0]}({', '.join(_quoted(v) for v in rest[1:])})"
        if head in ("concatenate", "join") and len(rest) == 2:
            return f"({_quoted(rest[0])} {'+' if head == 'concatenate' else '/'} {_quoted(rest[1])})"
        if head == "evaluate" and rest:
            return f"`{rest[0]}`"
    return "(expression)"


def _quoted(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else _expression(value)


def _parameter(raw: dict[str, Any]) -> Parameter:
    long, short = raw.get("long"), raw.get("short")
    default = raw.get("default")
    return Parameter(
        name=raw["name"],
        kind=raw.get("kind", "singular"),
        default=None if default is None else _expression(default),
        option=f"--{long}" if long else f"-{short}" if short else None,
        flag=bool(raw.get("value") is not None or raw.get("flag")),
    )


def _recipe(raw: dict[str, Any], settings: TaskSettings) -> Recipe:
    name = raw.get("namepath") or raw["name"]
    groups, others, confirm = [], [], False
    for attribute in raw.get("attributes", []):
        key, value = (attribute, None) if isinstance(attribute, str) else next(iter(attribute.items()))
        if key == "group":
            groups.append(str(value))
        elif key == "confirm":
            confirm = True
        elif key not in ("doc", "arg", "private"):
            others.append(key)
    private = bool(raw.get("private"))
    allowed = name in settings.allow if settings.allow else not private
    return Recipe(
        name=name,
        doc=raw.get("doc"),
        parameters=[_parameter(p) for p in raw.get("parameters", [])],
        dependencies=[d["recipe"] for d in raw.get("dependencies", [])],
        private=private,
        quiet=bool(raw.get("quiet")),
        confirm=confirm,
        groups=groups,
        attributes=others,
        allowed=allowed,
    )


def _collect(module: dict[str, Any], prefix: str, settings: TaskSettings, into: Justfile) -> None:
    for raw in module.get("recipes", {}).values():
        recipe = _recipe(raw, settings)
        into.recipes[recipe.name] = recipe
    for alias, target in module.get("aliases", {}).items():
        into.aliases[prefix + alias] = prefix + target["target"]
    for name, sub in module.get("modules", {}).items():
        _collect(sub, f"{prefix}{name}::", settings, into)


async def read_justfile(ctx: CallContext) -> Justfile:
    """Ask just for the justfile's recipes (``--dump`` parses it without running anything)."""
    settings = ctx.settings.tasks
    path = find_justfile(ctx, settings)
    argv = [just_binary(), "--justfile", str(path), "--working-directory", str(ctx.workspace)]
    result = await ctx.commands.run(
        [*argv, "--dump", "--dump-format", "json"],
        timeout_s=DUMP_TIMEOUT_S,
        max_output_bytes=MAX_DUMP_BYTES,
        keep_head=True,
        drop_env=without_just_variables,
    )
    shown = ctx.display(path)
    if not result.ok:
        raise ToolError(f"just could not read {shown}: {_error_text(ctx, result)}")
    if result.stdout_bytes > MAX_DUMP_BYTES:
        raise ToolError(f"{shown} is too large to read ({result.stdout_bytes} bytes as JSON)")
    try:
        dump = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise ToolError(f"just's description of {shown} is not JSON; is 'just' a recent version?") from None
    justfile = Justfile(path=path, shown=shown, recipes={}, aliases={})
    _collect(dump, "", settings, justfile)
    return justfile


def _error_text(ctx: CallContext, result: CommandResult) -> str:
    """just's own error message, without the host path of the workspace."""
    text = (result.stderr or result.stdout).strip() or f"exit code {result.exit_code}"
    return text.replace(str(ctx.workspace) + os.sep, "")[-2000:]


@toolset.tool(read_only=True, title="List tasks")
async def list_tasks(ctx: CallContext, include_private: bool = False) -> TaskList:
    """List the project's just recipes (its justfile): each with its doc comment, parameters (name, kind
    singular / plus / star, default, option), the recipes it depends on, groups and attributes, and whether
    run_task may run it under the [tasks] allow-list.

    ``include_private``: also list private recipes (``[private]`` or a name starting with ``_``). Nothing is run:
    just only parses the justfile.
    """
    justfile = await read_justfile(ctx)
    recipes = list(justfile.recipes.values())
    shown = recipes if include_private else [r for r in recipes if not r.private]
    return TaskList(
        justfile=justfile.shown,
        recipes=shown,
        aliases=justfile.aliases,
        hidden_private=len(recipes) - len(shown),
    )
