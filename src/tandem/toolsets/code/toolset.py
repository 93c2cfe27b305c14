"""The toolset object the code modules register their tools on."""

from __future__ import annotations

from tandem.core import Toolset

toolset = Toolset(
    "code",
    description="Structural code search and rewrite (ast-grep): patterns and YAML rules over syntax trees.",
)
