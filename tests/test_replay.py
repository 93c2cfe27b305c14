"""The seed's sequence end to end, on a real temporary repository: an orchestrator (in process, its toolsets as
the orchestrator profile names them) with a real coder child process mounted under ``coder.*``.

User: "Refactor the API error handling module." -> plan -> the architect is consulted -> the codebase is packed ->
an ast_rewrite is delegated to the coder -> the commit is refused until validation passes -> validation through
the coder -> the commit lands. And the other way: a rewrite that breaks the tests never lands.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tandem.config import load_settings
from tandem.core import Registry
from tandem.core.profiles import toolsets_for
from tandem.server import TandemServer
from tests.toolsets.calls import call, git, refused

pytestmark = pytest.mark.anyio

ERRORS = '''"""The API's error handling."""


class ApiError(Exception):
    """An error the API reports to its caller."""


def load(store: dict, key: str) -> str:
    """The value of ``key``; an ApiError when it is missing."""
    try:
        return store[key]
    except KeyError as exc:
        raise ApiError(str(exc))


def parse(text: str) -> int:
    """``text`` as a number; an ApiError when it is not one."""
    try:
        return int(text)
    except ValueError as exc:
        raise ApiError(str(exc))
'''

TESTS = """import pytest

from api.errors import ApiError, load, parse


def test_load_reports_the_cause():
    with pytest.raises(ApiError) as caught:
        load({}, "user")
    assert isinstance(caught.value.__cause__, KeyError)


def test_parse():
    assert parse("42") == 42
    with pytest.raises(ApiError):
        parse("x")
"""

REWRITE = {
    "pattern": "raise ApiError(str($E))",
    "rewrite": "raise ApiError(str($E)) from $E",
    "language": "python",
    "paths": ["api"],
}


def _repository(root: Path) -> Path:
    """A small API whose errors lose their cause (the test that wants the cause fails until the refactoring)."""
    (root / "api").mkdir(parents=True)
    (root / "api" / "__init__.py").write_text('"""The API."""\n')
    (root / "api" / "errors.py").write_text(ERRORS)
    (root / "tests").mkdir()
    (root / "tests" / "test_errors.py").write_text(TESTS)
    (root / ".gitignore").write_text(".tandem/\n__pycache__/\n.pytest_cache/\n")
    # The coder child reads the same tandem.toml: its test command is this interpreter's pytest.
    command = ", ".join(f'"{part}"' for part in [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    (root / "tandem.toml").write_text(f"[code]\ntest_command = [{command}]\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "feat: the API")
    return root


@contextlib.asynccontextmanager
async def orchestrator(workspace: Path) -> AsyncIterator[Client]:
    """A client of an orchestrator serving ``workspace``: every toolset of its profile, the coder a real child."""
    settings = load_settings(workspace, profile="orchestrator")
    tandem = TandemServer(Registry.from_entry_points(toolsets_for(settings)), settings)
    async with Client(tandem.server, mode="legacy") as client:
        yield client


async def _delegate(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    result = await client.call_tool("delegate", {"tool": tool, "arguments": arguments})
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_a_refactoring_lands_only_once_validation_passes(tmp_path: Path) -> None:
    root = _repository(tmp_path / "repo")
    start = git(root, "rev-parse", "HEAD").strip()
    async with orchestrator(root) as client:
        served = {tool.name for tool in (await client.list_tools()).tools}
        assert {"pack_codebase", "consult_specialist", "sdlc_status", "git_commit", "delegate"} <= served
        assert {"coder.ast_rewrite", "coder.run_all_validations"} <= served and "ast_rewrite" not in served

        await call(client, "sdlc_advance", step="plan", evidence="Refactor the API error handling module: chain causes")
        advice = await call(
            client,
            "consult_specialist",
            question="How should the API error handling module keep the original exception?",
            persona="architect",
            context_paths=["api/errors.py"],
        )
        assert advice["persona"] == "architect" and advice["path"] == "prompt"  # this client cannot sample
        assert "raise ApiError(str(exc))" in advice["prompt"]

        packed = await call(client, "pack_codebase", compress=True)
        assert packed["pack_id"] and packed["total_tokens"] > 0
        pack = await call(client, "grep_packed", pack_id=packed["pack_id"], pattern="class ApiError")
        assert pack["matches"][0]["file"] == "api/errors.py"

        preview = await _delegate(client, "ast_rewrite", REWRITE)
        assert preview["files"] == [
            {"path": "api/errors.py", "replacements": 2, "sha256": preview["files"][0]["sha256"]}
        ]
        hashes = {f["path"]: f["sha256"] for f in preview["files"]}
        applied = await _delegate(client, "coder.ast_rewrite", {**REWRITE, "dry_run": False, "expected_hashes": hashes})
        assert applied["applied"]
        await call(client, "sdlc_advance", step="implement", evidence="ast_rewrite: raise ... from exc, 2 places")

        message = await refused(client, "git_commit", message="refactor(api): keep the cause of API errors", all=True)
        assert "commit refused" in message and "nothing was validated" in message
        assert git(root, "rev-parse", "HEAD").strip() == start

        report = await _delegate(client, "run_all_validations", {})
        assert report["ok"], report
        status = await call(client, "sdlc_status")
        assert [s["step"] for s in status["steps"] if s["done"]] == ["plan", "consult", "implement", "validate"]
        assert status["commit_allowed"]

        committed = await call(client, "git_commit", message="refactor(api): keep the cause of API errors", all=True)
        after = await call(client, "sdlc_status")
    assert git(root, "log", "-1", "--format=%s").strip() == "refactor(api): keep the cause of API errors"
    assert git(root, "rev-parse", "HEAD").strip() == committed["commit"]["sha"] != start
    assert "raise ApiError(str(exc)) from exc" in git(root, "show", "HEAD:api/errors.py")
    assert after["commits"] == [committed["commit"]["sha"]] and after["cycle"] == 2


async def test_a_rewrite_that_breaks_the_tests_never_lands(tmp_path: Path) -> None:
    root = _repository(tmp_path / "repo")
    start = git(root, "rev-parse", "HEAD").strip()
    broken = {**REWRITE, "rewrite": "raise ApiError(str($E)) from None"}
    async with orchestrator(root) as client:
        preview = await _delegate(client, "ast_rewrite", broken)
        hashes = {f["path"]: f["sha256"] for f in preview["files"]}
        await _delegate(client, "ast_rewrite", {**broken, "dry_run": False, "expected_hashes": hashes})
        report = await call(client, "coder.run_all_validations")
        assert not report["ok"]
        assert [s["status"] for s in report["steps"] if s["name"] == "tests"] == ["failed"]
        message = await refused(client, "git_commit", message="refactor(api): hide causes", all=True)
        assert "the last validation (coder.run_all_validations) failed" in message
        status = await call(client, "sdlc_status")
    assert git(root, "rev-parse", "HEAD").strip() == start
    assert status["commit_allowed"] is False and status["validation"]["ok"] is False
