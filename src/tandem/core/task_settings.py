"""Settings of the tasks toolset (the ``[tasks]`` table of ``tandem.toml``): which just recipes may run, and
their limits. In the core so the one ``Settings`` object can hold them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TaskSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(
        default_factory=list,
        description="Recipes run_task may run (names as list_tasks shows them, 'module::recipe' in modules); "
        "empty: every public recipe. A private recipe runs only when named here.",
    )
    justfile: str | None = Field(
        None, description="The justfile, relative to the workspace; by default the one just finds in the root."
    )
    timeout_s: float = Field(600.0, gt=0, description="Default time limit of run_task (the policy's maximum caps it).")
    option_arguments: bool = Field(
        False,
        description="Pass arguments that start with '-' to recipes as values (just never reads them as its own "
        "options: Tandem puts '--' before the recipe). Off: only the options a recipe declares are accepted.",
    )
    shell_characters: bool = Field(
        False,
        description="Accept arguments holding characters a shell treats specially ($ ` ; | & < > quotes ...). Off "
        "by default because just pastes '{{arg}}' into the recipe's shell lines unquoted.",
    )
