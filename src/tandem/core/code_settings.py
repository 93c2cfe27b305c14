"""Settings of the code toolset's quality gates (the ``[code]`` table of ``tandem.toml``): which linters and
formatters run, and how the project's tests are run. They live in the core so the one ``Settings`` object can hold
them without the core importing a toolset."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

KNOWN_LINTERS = ("ruff", "shellcheck", "eslint")
KNOWN_FORMATTERS = ("ruff", "shfmt", "prettier", "treefmt")


class CodeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("linters", "formatters")
    @classmethod
    def _known(cls, names: list[str], info: ValidationInfo) -> list[str]:
        known = KNOWN_LINTERS if info.field_name == "linters" else KNOWN_FORMATTERS
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown {info.field_name}: {', '.join(unknown)}; known: {', '.join(known)}")
        return names

    linters: list[str] = Field(
        default_factory=lambda: ["ruff"],
        description="Linters lint runs, when installed: ruff, shellcheck, eslint (a missing one is reported).",
    )
    formatters: list[str] = Field(
        default_factory=lambda: ["ruff"],
        description="Formatters format runs, when installed: ruff, shfmt, prettier, treefmt (the project's "
        "treefmt.toml decides what it runs); a missing one is reported.",
    )
    test_command: list[str] | None = Field(
        None,
        description="How run_tests starts pytest, e.g. ['uv', 'run', 'pytest']; by default the workspace's "
        "virtual environment (.venv/bin/python -m pytest) if it has one, else python3 -m pytest.",
    )
    test_timeout_s: float = Field(900.0, gt=0, description="Default time limit of run_tests.")
