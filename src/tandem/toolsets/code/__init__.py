"""The ``code`` toolset: structural search and rewrite with ast-grep, syntax checks, lint and format, secret and
unsafe-code scans, pytest runs and ``run_all_validations``. Paths go through ``tandem.core.workspace_path``;
subprocesses through the command runner."""

from __future__ import annotations

from tandem.toolsets.code import (  # noqa: F401  (they register the tools)
    lint,
    pytest_run,
    secret_scan,
    structural,
    syntax_check,
    unsafe_scan,
    validations,
)
from tandem.toolsets.code.toolset import toolset

__all__ = ["toolset"]
