"""The ``code`` toolset: structural search and rewrite with ast-grep (more tools follow: syntax checks, lint and
format, secrets, git, tests). Paths go through ``tandem.core.workspace_path``; subprocesses through the runner."""

from __future__ import annotations

from tandem.toolsets.code import lint, pytest_run, structural, syntax_check, validations  # noqa: F401  (registers the tools)
from tandem.toolsets.code.toolset import toolset

__all__ = ["toolset"]
