"""The toolset object the code modules register their tools on."""

from __future__ import annotations

from tandem.core import Toolset

toolset = Toolset(
    "code",
    description="Structural search and rewrite (ast-grep), syntax checks, lint and format, secret and unsafe-code "
    "scans, the test suite, and all of them at once (run_all_validations).",
)
