"""``run_task``: one just recipe, with arguments, through the command runner.

What a caller gives can never reach just as just's own options or variable overrides: the command is
``just --justfile F --working-directory W --color never -- RECIPE ARGS...``; after ``--`` (and after a first recipe
name) just reads every word as a recipe name or a recipe argument, so ``--shell x``, ``-f file`` or ``x=1`` arrive
as plain values. What is left to guard is checked before just starts:

- the recipe must be one the justfile defines (just's identifier grammar, ``module::recipe`` in modules), allowed
  by ``[tasks] allow``; an alias runs its recipe under the recipe's rules;
- the argument count must fit the recipe's parameters, because just reads the words left over as more recipes
  to run (``just -- build x test`` runs ``test`` too);
- an argument starting with ``-`` must be an option the recipe declares, unless ``[tasks] option_arguments``;
- an argument holding shell syntax is refused unless ``[tasks] shell_characters``, since just pastes ``{{arg}}``
  into the recipe's shell lines as text (``x; rm -rf ~`` would run).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError
from tandem.core.task_settings import TaskSettings
from tandem.toolsets.tasks.recipes import (
    IDENTIFIER,
    Justfile,
    Recipe,
    just_binary,
    read_justfile,
    without_just_variables,
)
from tandem.toolsets.tasks.toolset import toolset

PROGRESS_INTERVAL_S = 0.5
SHELL_SYNTAX = re.compile(r"[\s$`;|&<>()'\"\\*?\[\]{}~#!]")
"""Characters with a meaning to a shell: word splitting, expansion, quoting, globbing, comments, operators."""


class TaskRun(BaseModel):
    recipe: str
    args: list[str]
    command: str = Field(description="The just command line, as run (justfile path relative to the workspace).")
    failed: bool = Field(description="The recipe exited non-zero, was stopped, or timed out.")
    exit_code: int | None = Field(description="Negative when a signal ended just (-9: killed).")
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    output_limit_hit: bool = Field(False, description="The recipe produced too much output and was stopped.")

    def summary(self) -> str:
        if self.timed_out:
            state = "FAILED: stopped at the time limit"
        elif self.failed:
            state = f"FAILED (exit code {self.exit_code})"
        else:
            state = "succeeded"
        text = f"recipe {self.recipe!r} {state} in {self.duration_s:.1f}s"
        tail = (self.stderr if self.failed and self.stderr.strip() else self.stdout).strip()[-1500:]
        return text + (f"\n{tail}" if tail else "")


def resolve_recipe(justfile: Justfile, name: str, settings: TaskSettings) -> Recipe:
    """The recipe ``name`` names (an alias resolved), if the caller may run it."""
    if not all(IDENTIFIER.fullmatch(part) for part in name.split("::")):
        raise ToolError(
            f"{name[:100]!r} is not a recipe name (letters, digits, '_' and '-', not starting with '-'; "
            "'module::recipe' in a module); see list_tasks"
        )
    target = justfile.aliases.get(name, name)
    recipe = justfile.recipes.get(target)
    if recipe is None:
        known = ", ".join(sorted(r.name for r in justfile.recipes.values() if not r.private)[:40])
        raise ToolError(f"{justfile.shown} has no recipe {name!r}; its recipes: {known or 'none'}")
    if not recipe.allowed:
        if settings.allow:
            raise ToolError(
                f"recipe {recipe.name!r} is not on the [tasks] allow-list in tandem.toml "
                f"(allowed: {', '.join(settings.allow)})"
            )
        raise ToolError(f"recipe {recipe.name!r} is private; name it in [tasks] allow in tandem.toml to run it")
    return recipe


def check_arguments(recipe: Recipe, args: list[str], settings: TaskSettings) -> None:
    """Refuse arguments just would read as something else than this recipe's values (see the module doc)."""
    options = {p.option: p for p in recipe.parameters if p.option}
    positional = [p for p in recipe.parameters if not p.option]
    count = 0
    awaiting: str | None = None
    for arg in args:
        if "\x00" in arg:
            raise ToolError("an argument contains a NUL byte")
        if not settings.shell_characters and SHELL_SYNTAX.search(arg):
            raise ToolError(
                f"the argument {arg[:100]!r} holds characters a shell treats specially (spaces, quotes, $ ; | & "
                "< > and the like); just pastes arguments into the recipe's shell lines, so they are refused. "
                "Set [tasks] shell_characters = true in tandem.toml if the justfile quotes its arguments"
            )
        if awaiting is not None:
            awaiting = None
            continue
        if arg.startswith("-") and arg != "-":
            name, has_value, _ = arg.partition("=")
            declared = options.get(name)
            if declared is not None:
                if declared.flag and has_value:
                    raise ToolError(f"the option {name} of recipe {recipe.name!r} takes no value")
                if not declared.flag and not has_value:
                    awaiting = name
                continue
            if not settings.option_arguments:
                declared_names = ", ".join(options) or "none"
                raise ToolError(
                    f"the argument {arg[:100]!r} starts with '-'; recipe {recipe.name!r} declares no such option "
                    f"(its options: {declared_names}). Set [tasks] option_arguments = true in tandem.toml to pass "
                    "such arguments to recipes as values"
                )
        count += 1
    if awaiting is not None:
        raise ToolError(f"the option {awaiting} of recipe {recipe.name!r} needs a value")
    least = sum(1 for p in positional if p.required)
    most = None if any(p.kind != "singular" for p in positional) else len(positional)
    if count < least or (most is not None and count > most):
        takes = f"{least}" if least == most else f"at least {least}" if most is None else f"{least} to {most}"
        raise ToolError(
            f"recipe {recipe.name!r} takes {takes} argument(s) ({recipe.usage()}), got {count}; "
            "just would read extra words as more recipes to run"
        )


async def _confirmed(ctx: CallContext, recipe: Recipe) -> None:
    """A ``[confirm]`` recipe runs only when the user says yes, asked through the client (elicitation)."""
    if "elicitation" not in ctx.client_capabilities:
        raise ToolError(
            f"recipe {recipe.name!r} asks for confirmation before it runs ([confirm]), and this client cannot "
            "ask the user (no elicitation support); run it yourself"
        )
    schema = {
        "type": "object",
        "properties": {"run": {"type": "boolean", "title": f"Run just recipe {recipe.name}?"}},
        "required": ["run"],
    }
    answer = await ctx.elicit(f"The just recipe {recipe.name!r} asks for confirmation before it runs.", schema)
    if not answer or answer.get("run") is not True:
        raise ToolError(f"recipe {recipe.name!r} was not run: the user did not confirm it")


@toolset.tool(destructive=True, open_world=True, title="Run a task", task_support="optional")
async def run_task(
    ctx: CallContext,
    name: str,
    args: list[str] | None = None,
    timeout_s: Annotated[float, Field(gt=0)] | None = None,
) -> TaskRun:
    """Run one of the project's just recipes (see list_tasks) with arguments, and return its exit code and output.

    ``name``: the recipe ('module::recipe' for a module's recipe, or an alias). ``args``: the recipe's arguments
    in order, and ``--option value`` for the options it declares; their count must fit its parameters.
    Arguments are never read as just's own options or variable overrides; arguments with shell syntax
    (spaces, quotes, ``$``, ``;``...) and undeclared ``-options`` are refused unless tandem.toml [tasks] allows
    them. The recipe's dependencies run first, as just runs them. ``timeout_s``: seconds (default [tasks]
    timeout_s); the recipe's whole process group is stopped at the limit or when the call is cancelled. A recipe
    that fails comes back with ``failed: true``, its exit code and its output. Output is capped (start and end
    kept) and streamed as progress.
    """
    settings = ctx.settings.tasks
    arguments = list(args or [])
    justfile = await read_justfile(ctx)
    recipe = resolve_recipe(justfile, name, settings)
    check_arguments(recipe, arguments, settings)
    confirm = []
    if recipe.confirm:
        await _confirmed(ctx, recipe)
        confirm = ["--yes"]
    await ctx.run_as_task()  # a client that supports tasks polls for the result instead of holding the call open
    prefix = ["--justfile", str(justfile.path), "--working-directory", str(ctx.workspace), "--color", "never"]
    argv = [just_binary(), *prefix, *confirm, "--", recipe.name, *arguments]
    result = await ctx.commands.run(
        argv,
        timeout_s=timeout_s or settings.timeout_s,
        on_output=ctx.output_progress(PROGRESS_INTERVAL_S),
        drop_env=without_just_variables,
    )
    shown = ["just", "--justfile", justfile.shown, *confirm, "--", recipe.name, *arguments]
    return TaskRun(
        recipe=recipe.name,
        args=arguments,
        command=" ".join(shown),
        failed=not result.ok or result.output_limit_hit,
        **result.reported(),
    )
