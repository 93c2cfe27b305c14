"""list_tasks and run_task through a real MCP client, with the real just binary (rust-just) on real justfiles."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, types

from tandem.config import load_settings
from tandem.core import Registry
from tandem.server import TandemServer
from tests.toolsets.calls import call, refused, serving, text

pytestmark = pytest.mark.anyio

JUSTFILE = """\
greeting := "Hello"

# Greet someone
hello name punctuation="!": setup
    echo "{{greeting}} {{name}}{{punctuation}}"

setup:
    @echo setup-ran

# Echo every word given
words first +rest:
    echo {{first}} {{rest}}

# Run the checks, with optional extras
check *extra:
    echo "check:{{extra}}"

# Build at a level
[arg("level", long="level")]
[arg("loud", long="loud", value="yes")]
build level="1" loud="no":
    echo "level={{level}} loud={{loud}}"

[private]
internal:
    echo internal-ran

_helper:
    echo helper-ran

[group('ci')]
@lint:
    echo lint-ran

fail:
    echo about-to-fail
    exit 3

slow:
    echo started > started.txt
    sleep 2
    echo finished > finished.txt

alias h := hello
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "justfile").write_text(JUSTFILE)
    return root


async def test_list_tasks_describes_recipes(workspace: Path) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        listing = await call(client, "list_tasks")
        recipes = {r["name"]: r for r in listing["recipes"]}
        assert listing["justfile"] == "justfile"
        assert set(recipes) == {"hello", "setup", "words", "check", "build", "lint", "fail", "slow"}
        hello = recipes["hello"]
        assert hello["doc"] == "Greet someone" and hello["dependencies"] == ["setup"]
        assert [(p["name"], p["kind"], p["default"]) for p in hello["parameters"]] == [
            ("name", "singular", None),
            ("punctuation", "singular", "!"),
        ]
        assert [p["kind"] for p in recipes["words"]["parameters"]] == ["singular", "plus"]
        assert recipes["check"]["parameters"][0]["kind"] == "star"
        assert [(p["option"], p["flag"]) for p in recipes["build"]["parameters"]] == [
            ("--level", False),
            ("--loud", True),
        ]
        assert recipes["lint"]["quiet"] and recipes["lint"]["groups"] == ["ci"]
        assert listing["aliases"] == {"h": "hello"} and listing["hidden_private"] == 2
        summary = await text(client, "list_tasks")
        assert "hello name [punctuation=!]  # Greet someone" in summary

        everything = await call(client, "list_tasks", include_private=True)
        private = {r["name"] for r in everything["recipes"] if r["private"]}
        assert private == {"internal", "_helper"}
        assert not any(r["allowed"] for r in everything["recipes"] if r["private"])


async def test_run_task_passes_arguments_and_runs_dependencies(workspace: Path) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        run = await call(client, "run_task", name="hello", args=["Ada"])
        assert not run["failed"] and run["exit_code"] == 0
        assert run["stdout"] == "setup-ran\nHello Ada!\n"
        run = await call(client, "run_task", name="hello", args=["Ada", "."])
        assert run["stdout"].endswith("Hello Ada.\n")
        run = await call(client, "run_task", name="words", args=["a", "b", "c"])
        assert run["stdout"] == "a b c\n"
        run = await call(client, "run_task", name="h", args=["Bob"])  # an alias
        assert run["recipe"] == "hello" and "Hello Bob!" in run["stdout"]
        run = await call(client, "run_task", name="build", args=["--level", "3", "--loud"])
        assert run["stdout"] == "level=3 loud=yes\n"
        run = await call(client, "run_task", name="build", args=["--level=4"])
        assert run["stdout"] == "level=4 loud=no\n"


async def test_run_task_streams_progress(workspace: Path) -> None:
    (workspace / "justfile").write_text("steps:\n    @for i in 1 2 3 4; do echo step $i; sleep 0.4; done\n")
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with serving(workspace, toolsets=["tasks"]) as client:
        result = await client.call_tool("run_task", {"name": "steps"}, progress_callback=on_progress)
        assert not result.is_error and result.structured_content["stdout"].count("step") == 4
    assert seen and all(m and m.startswith("step") for m in seen)


async def test_failing_recipe_comes_back_as_failed(workspace: Path) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        run = await call(client, "run_task", name="fail")
        assert run["failed"] and run["exit_code"] == 3
        assert run["stdout"] == "about-to-fail\n" and "exit 3" in run["stderr"]
        summary = await text(client, "run_task", name="fail")
        assert summary.startswith("recipe 'fail' FAILED (exit code 3)")


async def test_timeout_stops_a_long_recipe(workspace: Path) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        started = time.monotonic()
        run = await call(client, "run_task", name="slow", timeout_s=1)
        assert run["timed_out"] and run["failed"] and time.monotonic() - started < 10
    assert (workspace / "started.txt").exists()
    await anyio.sleep(2.5)
    assert not (workspace / "finished.txt").exists()  # the recipe's shell was killed, not left running


async def test_settings_timeout_applies(workspace: Path) -> None:
    async with serving(workspace, toolsets=["tasks"], tasks={"timeout_s": 1}) as client:
        run = await call(client, "run_task", name="slow")
        assert run["timed_out"] and run["duration_s"] < 2


@pytest.mark.parametrize(
    "args",
    [
        ["--shell", "python3"],
        ["-f", "other.just"],
        ["--set", "greeting", "Pwned"],
        ["--justfile=other.just"],
        ["--dotenv-command", "touch pwned"],
    ],
)
async def test_just_options_in_arguments_are_refused(workspace: Path, args: list[str]) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        message = await refused(client, "run_task", name="check", args=args)
        assert "starts with '-'" in message and "option_arguments" in message


async def test_option_arguments_reach_the_recipe_as_values_never_just(workspace: Path) -> None:
    (workspace / "other.just").write_text("check *extra:\n    echo other-justfile-ran\n")
    async with serving(workspace, toolsets=["tasks"], tasks={"option_arguments": True}) as client:
        run = await call(client, "run_task", name="check", args=["-f", "other.just", "--set", "greeting", "x"])
        assert run["stdout"] == "check:-f other.just --set greeting x\n"
        run = await call(client, "run_task", name="hello", args=["--shell", "--yes"])
        assert run["stdout"].endswith("Hello --shell--yes\n")
    assert "other-justfile-ran" not in run["stdout"]


async def test_variable_overrides_in_arguments_are_plain_values(workspace: Path) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        run = await call(client, "run_task", name="hello", args=["greeting=Pwned"])
        assert run["stdout"].endswith("Hello greeting=Pwned!\n")  # the variable kept its value
        run = await call(client, "run_task", name="check", args=["greeting=Pwned", "x=1"])
        assert run["stdout"] == "check:greeting=Pwned x=1\n"


@pytest.mark.parametrize("name", ["greeting=Pwned", "--shell", "-f", "../other/hello", "hello world", "a::", ""])
async def test_recipe_names_that_are_not_recipes_are_refused(workspace: Path, name: str) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        assert "not a recipe name" in await refused(client, "run_task", name=name)


async def test_unknown_recipe_is_refused(workspace: Path) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        message = await refused(client, "run_task", name="deploy")
        assert "no recipe 'deploy'" in message and "hello" in message and "internal" not in message


async def test_argument_count_is_checked(workspace: Path) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        # Without the check, just would run the extra word "fail" as a second recipe.
        message = await refused(client, "run_task", name="hello", args=["Ada", ".", "fail"])
        assert "takes 1 to 2 argument(s)" in message and "got 3" in message
        assert "takes 1 to 2" in await refused(client, "run_task", name="hello")
        assert "takes at least 2" in await refused(client, "run_task", name="words", args=["a"])
        assert "takes 0 argument(s)" in await refused(client, "run_task", name="build", args=["5"])
        assert "needs a value" in await refused(client, "run_task", name="build", args=["--level"])
        assert "takes no value" in await refused(client, "run_task", name="build", args=["--loud=yes"])


@pytest.mark.parametrize("arg", ['Ada"; touch pwned; echo "', "$(touch pwned)", "`touch pwned`", "a b", "x|y"])
async def test_shell_syntax_in_arguments_is_refused(workspace: Path, arg: str) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        assert "shell treats specially" in await refused(client, "run_task", name="hello", args=[arg])
    assert not (workspace / "pwned").exists()


async def test_shell_characters_setting_lets_them_through(workspace: Path) -> None:
    (workspace / "justfile").write_text('set positional-arguments\n\nsay words:\n    echo "$1"\n')
    async with serving(workspace, toolsets=["tasks"], tasks={"shell_characters": True}) as client:
        run = await call(client, "run_task", name="say", args=["it's $(not) run"])
        assert run["stdout"] == "it's $(not) run\n"


async def test_private_recipes_and_the_allow_list(workspace: Path) -> None:
    async with serving(workspace, toolsets=["tasks"]) as client:
        assert "is private" in await refused(client, "run_task", name="internal")
    async with serving(workspace, toolsets=["tasks"], tasks={"allow": ["lint", "internal"]}) as client:
        assert (await call(client, "run_task", name="lint"))["stdout"] == "lint-ran\n"
        assert (await call(client, "run_task", name="internal"))["stdout"] == "internal-ran\n"
        message = await refused(client, "run_task", name="hello", args=["Ada"])
        assert "not on the [tasks] allow-list" in message and "lint, internal" in message
        assert "not on the [tasks] allow-list" in await refused(client, "run_task", name="h", args=["Ada"])
        listing = await call(client, "list_tasks")
        assert {r["name"] for r in listing["recipes"] if r["allowed"]} == {"lint"}


async def test_no_justfile_is_a_clear_error(tmp_path: Path) -> None:
    async with serving(tmp_path, toolsets=["tasks"]) as client:
        assert "has no justfile" in await refused(client, "list_tasks")
        assert "has no justfile" in await refused(client, "run_task", name="hello")


async def test_justfile_names_just_accepts(workspace: Path) -> None:
    (workspace / "justfile").rename(workspace / ".justfile")
    async with serving(workspace, toolsets=["tasks"]) as client:
        assert (await call(client, "list_tasks"))["justfile"] == ".justfile"
    (workspace / "Justfile").write_text("other:\n    echo other\n")
    async with serving(workspace, toolsets=["tasks"]) as client:
        assert "more than one justfile" in await refused(client, "list_tasks")


async def test_configured_justfile_is_confined(workspace: Path, tmp_path: Path) -> None:
    (workspace / "ci").mkdir()
    (workspace / "ci" / "tasks.just").write_text("ci:\n    echo ci-ran\n")
    async with serving(workspace, toolsets=["tasks"], tasks={"justfile": "ci/tasks.just"}) as client:
        assert (await call(client, "run_task", name="ci"))["stdout"] == "ci-ran\n"
    (tmp_path / "outside.just").write_text("out:\n    echo out\n")
    async with serving(workspace, toolsets=["tasks"], tasks={"justfile": "../outside.just"}) as client:
        assert "outside" in await refused(client, "list_tasks")


async def test_broken_justfile_reports_justs_error(workspace: Path) -> None:
    (workspace / "justfile").write_text("broken recipe x=:\n    echo\n")
    async with serving(workspace, toolsets=["tasks"]) as client:
        message = await refused(client, "list_tasks")
        assert "just could not read justfile" in message and str(workspace) not in message


async def test_module_recipes_run_by_path(workspace: Path) -> None:
    (workspace / "justfile").write_text("mod docs\n")
    (workspace / "docs").mkdir()
    (workspace / "docs" / "justfile").write_text("# Build the docs\nbuild format='html':\n    echo docs-{{format}}\n")
    async with serving(workspace, toolsets=["tasks"]) as client:
        listing = await call(client, "list_tasks")
        assert [(r["name"], r["doc"]) for r in listing["recipes"]] == [("docs::build", "Build the docs")]
        assert (await call(client, "run_task", name="docs::build", args=["pdf"]))["stdout"] == "docs-pdf\n"


async def test_just_settings_in_the_environment_are_ignored(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workspace / "other.just").write_text("hello *x:\n    echo other-justfile-ran\n")
    monkeypatch.setenv("JUST_JUSTFILE", str(workspace / "other.just"))
    monkeypatch.setenv("JUST_DRY_RUN", "true")
    async with serving(workspace, toolsets=["tasks"]) as client:
        run = await call(client, "run_task", name="hello", args=["Ada"])
        assert run["stdout"] == "setup-ran\nHello Ada!\n"


async def _confirm_client(workspace: Path, answer: bool | None) -> Any:
    settings = load_settings(workspace, toolsets=["tasks"])
    tandem = TandemServer(Registry.from_entry_points(settings.toolsets), settings)

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        if answer is None:
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content={"run": answer})

    return Client(tandem.server, mode="legacy", elicitation_callback=elicit)


async def test_confirm_recipes_ask_the_user(workspace: Path) -> None:
    (workspace / "justfile").write_text("[confirm]\ndeploy:\n    echo deployed > deployed.txt\n")
    async with serving(workspace, toolsets=["tasks"]) as client:
        assert "cannot ask the user" in await refused(client, "run_task", name="deploy")
    for answer in (False, None):
        async with await _confirm_client(workspace, answer) as client:
            assert "did not confirm" in await refused(client, "run_task", name="deploy")
    assert not (workspace / "deployed.txt").exists()
    async with await _confirm_client(workspace, True) as client:
        assert not (await call(client, "run_task", name="deploy"))["failed"]
    assert (workspace / "deployed.txt").read_text() == "deployed\n"


async def test_just_missing_is_a_clear_error(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.executable", str(workspace / "no-python-here"))
    monkeypatch.setenv("PATH", str(workspace))
    async with serving(workspace, toolsets=["tasks"]) as client:
        assert "pip install rust-just" in await refused(client, "list_tasks")
