"""lint, format and run_tests through a real MCP client: real ruff, shellcheck, shfmt and pytest runs on real files."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tandem.core.code_settings import KNOWN_FORMATTERS, KNOWN_LINTERS
from tandem.toolsets.code.linters import FORMATTERS, LINTERS
from tests.toolsets.calls import call, refused, serving

pytestmark = pytest.mark.anyio
PYTEST = {"test_command": [sys.executable, "-m", "pytest"]}

UNTIDY = "import os\nimport sys\n\nprint( sys.argv )\nif sys.argv == None:\n    pass\n"
TESTS = """import time
import pytest

def test_ok():
    assert 1 + 1 == 2

def test_wrong():
    assert 1 == 2, "one is not two"

@pytest.mark.skip(reason="not yet")
def test_later():
    pass

class TestGroup:
    @pytest.mark.parametrize("x", [1, 2])
    def test_param(self, x):
        assert x == 1

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_setup_error(broken):
    pass
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "untidy.py").write_text(UNTIDY)
    (root / "src" / "clean.py").write_text('"""Nothing to say."""\n\nVALUE = 1\n')
    (root / "build").mkdir()
    (root / "build" / "generated.py").write_text("import os\n")
    (root / ".gitignore").write_text("build/\n")
    (root / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["F", "E"]\n')
    (root / "run.sh").write_text("#!/bin/bash\necho $1\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_sample.py").write_text(TESTS)
    (root / "tests" / "test_slow.py").write_text("import time\n\ndef test_sleeps():\n    time.sleep(60)\n")
    return root


@pytest.fixture
async def client(workspace: Path) -> AsyncIterator[Client]:
    async with serving(
        workspace, toolsets=["code"], code={"test_command": [sys.executable, "-m", "pytest"]}
    ) as connected:
        yield connected


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_registries_match_the_settings_names() -> None:
    assert tuple(LINTERS) == KNOWN_LINTERS and tuple(FORMATTERS) == KNOWN_FORMATTERS


async def test_lint_reports_ruff_findings_under_the_projects_config(client: Client) -> None:
    result = await client.call_tool("lint", {})
    found = result.structured_content
    codes = {(f["path"], f["code"]) for f in found["findings"]}
    # E711 comes from the project's "E" selection; build/ is ignored, so its unused import is not reported.
    assert codes == {("src/untidy.py", "F401"), ("src/untidy.py", "E711"), ("tests/test_sample.py", "F401")}
    assert found["tools_run"] == ["ruff"] and found["files_checked"] == 4
    unused = next(f for f in found["findings"] if f["code"] == "F401")
    assert (unused["line"], unused["column"], unused["fixable"]) == (1, 8, True)
    assert result.content[0].text == "3 problem(s) in 4 file(s) (ruff): F401 x2, E711 x1"


async def test_a_large_report_counts_every_finding_and_lists_the_first(client: Client, workspace: Path) -> None:
    (workspace / "long.py").write_text("".join(f"VALUE_{i} = {'1 + ' * 30}1\n" for i in range(1200)))
    result = await call(client, "lint", paths=["long.py"])
    assert result["counts"] == {"E501": 1200} and result["truncated"]
    assert [f["line"] for f in result["findings"]] == list(range(1, 1001))


async def test_lint_fix_applies_safe_fixes_only(client: Client, workspace: Path) -> None:
    result = await call(client, "lint", paths=["src"], fix=True)
    assert result["fixed"] == 1
    assert [f["code"] for f in result["findings"]] == ["E711"]  # an unsafe fix is left for a person to judge
    assert "import os" not in (workspace / "src" / "untidy.py").read_text()


async def test_lint_never_fixes_through_a_link_out_of_the_workspace(
    client: Client, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("import os\n")
    (workspace / "src" / "link.py").symlink_to(outside)
    result = await call(client, "lint", fix=True)
    assert outside.read_text() == "import os\n"
    assert all(f["path"] != "src/link.py" for f in result["findings"])
    assert "outside the workspace" in await refused(client, "lint", paths=["src/link.py"])
    assert "outside the workspace" in await refused(client, "lint", paths=["../"])
    assert "outside the workspace" in await refused(client, "format", paths=[str(tmp_path)], check=False)


async def test_shellcheck_findings_and_missing_or_unknown_linters(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = await call(client, "lint", tools=["shellcheck"])
    assert [(f["path"], f["code"], f["line"]) for f in result["findings"]] == [("run.sh", "SC2086", 2)]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    missing = await client.call_tool("lint", {"tools": ["eslint"]})
    assert missing.structured_content["tools_missing"] == ["eslint"]
    assert missing.content[0].text == "no linter ran (not installed: eslint)"
    assert "unknown linters: pylint" in await refused(client, "lint", tools=["pylint"])


async def test_format_check_writes_nothing_and_shows_the_diff(client: Client, workspace: Path) -> None:
    before = digest(workspace / "src" / "untidy.py")
    result = await call(client, "format", paths=["src"])
    assert result["files"] == ["src/untidy.py"] and result["changed"] and not result["applied"]
    assert "-print( sys.argv )" in result["diff"] and "+print(sys.argv)" in result["diff"]
    assert str(workspace) not in result["diff"]
    assert digest(workspace / "src" / "untidy.py") == before


async def test_format_apply_rewrites_and_reports_errors(client: Client, workspace: Path) -> None:
    (workspace / "src" / "broken.py").write_text("def oops(:\n")
    result = await call(client, "format", paths=["src"], check=False)
    assert result["files"] == ["src/untidy.py"] and result["applied"]
    assert "print(sys.argv)" in (workspace / "src" / "untidy.py").read_text()
    assert any("broken.py" in e for e in result["errors"])
    again = await call(client, "format", paths=["src"])
    assert again["files"] == [] and not again["changed"]


async def test_shfmt_formats_shell(client: Client, workspace: Path) -> None:
    (workspace / "loop.sh").write_text("if true;   then\necho hi\nfi\n")
    result = await call(client, "format", tools=["shfmt"])
    assert result["files"] == ["loop.sh"] and "+if true; then" in result["diff"]


async def test_treefmt_runs_what_the_projects_treefmt_toml_names(client: Client, workspace: Path) -> None:
    assert "no treefmt.toml" in await refused(client, "format", tools=["treefmt"])
    bin_dir = Path(sys.executable).parent
    (workspace / "treefmt.toml").write_text(
        f'[formatter.python]\ncommand = "{bin_dir / "ruff"}"\noptions = ["format"]\nincludes = ["*.py"]\n'
        'excludes = ["tests/*"]\n'
        f'[formatter.shell]\ncommand = "{bin_dir / "shfmt"}"\noptions = ["--write"]\nincludes = ["*.sh"]\n'
    )
    (workspace / "-odd.sh").write_text("if true;   then\necho hi\nfi\n")
    before = digest(workspace / "src" / "untidy.py")
    checked = await call(client, "format", tools=["treefmt"])
    assert checked["files"] == ["-odd.sh", "src/untidy.py"] and checked["tools_run"] == ["treefmt"]
    assert "+print(sys.argv)" in checked["diff"] and "+if true; then" in checked["diff"]
    assert "--- a/src/untidy.py" in checked["diff"] and str(workspace) not in checked["diff"]
    assert digest(workspace / "src" / "untidy.py") == before  # a check writes nothing
    applied = await call(client, "format", tools=["treefmt"], paths=["src"], check=False)
    assert applied["files"] == ["src/untidy.py"] and "print(sys.argv)" in (workspace / "src" / "untidy.py").read_text()
    (workspace / "src" / "broken.py").write_text("def oops(:\n")
    failing = await call(client, "format", tools=["treefmt"], paths=["src"])
    assert any("src/broken.py" in e for e in failing["errors"]) and failing["files"] == []


async def test_run_tests_counts_and_failures(client: Client) -> None:
    result = await client.call_tool("run_tests", {"paths": ["tests/test_sample.py"]})
    run = result.structured_content
    assert (run["passed"], run["failed"], run["errors"], run["skipped"], run["total"]) == (2, 2, 1, 1, 6)
    ids = {f["test_id"]: f for f in run["failures"]}
    assert set(ids) == {
        "tests/test_sample.py::test_wrong",
        "tests/test_sample.py::TestGroup::test_param[2]",
        "tests/test_sample.py::test_setup_error",
    }
    wrong = ids["tests/test_sample.py::test_wrong"]
    assert wrong["kind"] == "failure" and "one is not two" in wrong["message"] and wrong["line"] == 7
    assert "assert 1 == 2" in wrong["traceback"]
    assert ids["tests/test_sample.py::test_setup_error"]["kind"] == "error"
    assert result.content[0].text.startswith("2 passed, 2 failed, 1 errors, 1 skipped")
    assert "tandem-pytest-" not in run["output_tail"]


async def test_run_tests_selects_by_node_id_and_keyword(client: Client) -> None:
    one = await call(client, "run_tests", paths=["tests/test_sample.py::TestGroup"])
    assert (one["passed"], one["failed"], one["total"]) == (1, 1, 2)
    keyword = await call(client, "run_tests", paths=["tests/test_sample.py"], args=["-k", "ok or later"])
    assert (keyword["passed"], keyword["skipped"], keyword["total"]) == (1, 1, 2)


@pytest.mark.parametrize(
    ("args", "paths", "message"),
    [
        (["--basetemp=/tmp/wiped"], None, "not allowed"),
        (["-p", "evil_plugin"], None, "not allowed"),
        (["--junitxml=/tmp/x.xml"], None, "not allowed"),
        (["-c", "/etc/passwd"], None, "not allowed"),
        (["-k"], None, "needs a value"),
        (None, ["../outside"], "outside the workspace"),
        (None, ["/etc/passwd::test"], "outside the workspace"),
    ],
)
async def test_run_tests_refuses_unsafe_arguments(
    client: Client, args: list[str] | None, paths: list[str] | None, message: str
) -> None:
    arguments: dict[str, Any] = {}
    if args is not None:
        arguments["args"] = args
    if paths is not None:
        arguments["paths"] = paths
    assert message in await refused(client, "run_tests", **arguments)


async def test_a_path_that_looks_like_an_option_is_a_path(client: Client, workspace: Path) -> None:
    (workspace / "-x.py").write_text("def test_dash():\n    pass\n")
    result = await call(client, "run_tests", paths=["-x.py"])
    assert (result["passed"], result["total"]) == (1, 1)


async def test_run_tests_time_limit_and_progress(client: Client) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    started = time.monotonic()
    limited = await call(client, "run_tests", paths=["tests/test_slow.py"], timeout_s=3)
    assert limited["timed_out"] and time.monotonic() - started < 30
    await client.call_tool("run_tests", {"paths": ["tests/test_sample.py"]}, progress_callback=on_progress)
    assert seen and seen[-1] == 100.0


async def test_run_tests_cancelled_stops_pytest(client: Client, workspace: Path) -> None:
    with anyio.move_on_after(4):
        await client.call_tool("run_tests", {"paths": ["tests/test_slow.py"]})
    for _ in range(100):
        done = await anyio.run_process(["pgrep", "-f", "test_slow.py"], check=False)
        if not done.stdout:
            return
        await anyio.sleep(0.1)
    raise AssertionError("pytest still runs after the call was cancelled")


async def test_run_tests_uses_the_workspace_virtual_environment(tmp_path: Path) -> None:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    async with serving(tmp_path, toolsets=["code"]) as connected:
        result = await call(connected, "run_tests")
    assert (result["passed"], result["total"]) == (1, 1)


NODE_TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin"


@pytest.mark.skipif(not (NODE_TOOLS / "eslint").exists(), reason="scripts/node-tools installs eslint and prettier")
async def test_eslint_and_prettier_when_installed(
    client: Client, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{NODE_TOOLS}:{Path(sys.executable).parent}:/usr/bin:/bin")
    (workspace / "eslint.config.mjs").write_text(
        'export default [{files: ["**/*.js"], rules: {"prefer-const": "error", "no-unused-vars": "warn"}}];\n'
    )
    (workspace / "web").mkdir()
    (workspace / "web" / "app.js").write_text("let total = 1;\nconst unused = 2;\nconsole.log(total)\n")
    found = await call(client, "lint", paths=["web"], tools=["eslint"])
    assert [(f["code"], f["line"], f["severity"], f["fixable"]) for f in found["findings"]] == [
        ("prefer-const", 1, "error", True),
        ("no-unused-vars", 2, "warning", False),
    ]
    fixed = await call(client, "lint", paths=["web"], tools=["eslint"], fix=True)
    assert fixed["fixed"] == 1 and (workspace / "web" / "app.js").read_text().startswith("const total = 1;")
    check = await call(client, "format", paths=["web"], tools=["prettier"])
    assert check["files"] == ["web/app.js"] and (workspace / "web" / "app.js").read_text().endswith("(total)\n")
    applied = await call(client, "format", paths=["web"], tools=["prettier"], check=False)
    assert applied["files"] == ["web/app.js"]
    assert (workspace / "web" / "app.js").read_text().endswith("console.log(total);\n")


async def test_run_all_validations_reports_every_step(client: Client, workspace: Path) -> None:
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    (workspace / "tests" / "test_slow.py").unlink()
    (workspace / "config.json").write_text('{"retries": 3,}\n')
    result = await client.call_tool("run_all_validations", {}, progress_callback=on_progress)
    report = result.structured_content
    steps = {s["name"]: s for s in report["steps"]}
    assert not report["ok"]
    assert steps["syntax"]["status"] == "failed" and steps["syntax"]["details"][0].startswith("config.json:1:15:")
    assert steps["lint"]["status"] == "failed" and steps["lint"]["problems"] == 3
    assert "src/untidy.py:1:8: F401 `os` imported but unused" in steps["lint"]["details"]
    assert steps["format"]["status"] == "failed" and "src/untidy.py" in steps["format"]["details"]
    assert steps["tests"]["status"] == "failed" and steps["tests"]["problems"] == 3
    assert result.content[0].text.startswith("FAILED: syntax (1 of ")
    assert "running tests" in seen


async def test_run_all_validations_passes_a_clean_project(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text('"""An app."""\n\n\ndef add(a: int, b: int) -> int:\n    return a + b\n')
    (tmp_path / "test_app.py").write_text("from app import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n")
    async with serving(
        tmp_path, toolsets=["code"], code={"test_command": [sys.executable, "-m", "pytest"]}
    ) as connected:
        report = await call(connected, "run_all_validations")
        quick = await call(connected, "run_all_validations", skip=["tests"])
    assert report["ok"], report
    assert all(s["status"] == "passed" for s in report["steps"])
    assert [s["status"] for s in quick["steps"] if s["name"] == "tests"] == ["skipped"]
