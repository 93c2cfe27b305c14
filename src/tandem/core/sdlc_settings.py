"""Settings of the sdlc toolset (the ``[sdlc]`` table): how strictly the development loop and the policy rules
apply. In the core so the one ``Settings`` object can hold them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Strictness = Literal["off", "warn", "enforce"]
ValidationStep = Literal["syntax", "lint", "format", "secrets", "tests"]


class SdlcSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Strictness | None = Field(
        None,
        description="off: track only; warn: commits and out-of-order steps go ahead with a warning; enforce: they "
        "are refused. Unset: enforce in the orchestrator profile, warn otherwise.",
    )
    may_skip: list[ValidationStep] = Field(
        default_factory=list,
        description="Validation steps a run_all_validations may skip and still count as validating the change.",
    )
    validation_tasks: list[str] = Field(
        default_factory=list,
        description="just recipes (run with run_task, no arguments) whose success validates the change, like "
        "run_all_validations does: e.g. ['agent-validate'].",
    )
    policy_file: str = Field(".tandem/policy.toml", description="The policy rules, relative to the workspace.")
    instruction_files: list[str] = Field(
        default_factory=lambda: ["CLAUDE.md", "AGENTS.md"],
        description="Project instruction files whose recognisable rules join the policy.",
    )
