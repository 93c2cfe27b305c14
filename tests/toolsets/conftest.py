"""Fixtures the toolset tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every git here (Tandem's and the tests' own) sees one known identity and no user or system config."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Ada Tester")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "ada@example.org")
