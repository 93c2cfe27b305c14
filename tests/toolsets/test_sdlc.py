"""The sdlc toolset on real git repositories: the loop, the validation that a commit needs, the policy and its
sources, through an MCP client."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.toolsets.calls import call, git, refused, serving

pytestmark = pytest.mark.anyio

TOOLSETS = ["sdlc", "git", "code"]
CODE = {"test_command": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]}


def _project(root: Path, commit: bool = True) -> Path:
    """A small clean Python project in a git repository with one commit (or, without ``commit``, all staged on a
    branch with no commit yet)."""
    (root / "app.py").write_text('"""An app."""\n\n\ndef add(a: int, b: int) -> int:\n    return a + b\n')
    (root / "test_app.py").write_text("from app import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n")
    (root / ".gitignore").write_text(".tandem/\n__pycache__/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    git(root, "add", "-A")
    if commit:
        git(root, "commit", "-qm", "feat: start")
    return root


def _serve(root: Path, mode: str = "enforce", **settings: Any):
    sdlc = {"mode": mode, **settings.pop("sdlc", {})}
    return serving(root, toolsets=TOOLSETS, code=CODE, sdlc=sdlc, **settings)


def _change(root: Path, body: str = "a + b") -> None:
    (root / "app.py").write_text(f'"""An app."""\n\n\ndef add(a: int, b: int) -> int:\n    return {body}\n')


async def test_commit_is_refused_until_a_validation_passes_on_the_tree_it_commits(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _change(root, "b + a")
    async with _serve(root) as client:
        message = await refused(client, "git_commit", message="refactor: swap", all=True)
        assert "commit refused" in message and "nothing was validated" in message
        assert "run run_all_validations" in message
        status = await call(client, "sdlc_status")
        assert status["commit_allowed"] is False and status["next"].startswith("plan the change")

        assert (await call(client, "run_all_validations"))["ok"]
        status = await call(client, "sdlc_status")
        assert status["validation"]["current"] and status["commit_allowed"]
        assert [s["step"] for s in status["steps"] if s["done"]] == ["validate"]

        # The tree changes after the validation: the validation no longer covers it.
        _change(root, "a + b + 0")
        message = await refused(client, "git_commit", message="refactor: swap", all=True)
        assert "the last passing validation (run_all_validations) did not check: app.py (not validated)" in message
        assert (await call(client, "sdlc_status"))["validation"]["current"] is False

        assert (await call(client, "run_all_validations"))["ok"]
        committed = await call(client, "git_commit", message="refactor: swap", all=True)
        status = await call(client, "sdlc_status")
    assert git(root, "log", "-1", "--format=%s").strip() == "refactor: swap"
    assert status["commits"] == [committed["commit"]["sha"]] and status["cycle"] == 2
    assert not any(s["done"] for s in status["steps"])


async def test_a_failed_or_partial_validation_does_not_validate(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "test_app.py").write_text("from app import add\n\n\ndef test_add():\n    assert add(1, 2) == 4\n")
    async with _serve(root) as client:
        assert not (await call(client, "run_all_validations"))["ok"]
        failed = await refused(client, "git_commit", message="x", all=True)
        assert "the last validation (run_all_validations) failed" in failed
        (root / "test_app.py").write_text("from app import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n")
        assert (await call(client, "run_all_validations", skip=["tests"]))["ok"]
        message = await refused(client, "git_commit", message="x", all=True)
        assert "(run_all_validations) does not count: it skipped tests" in message
        assert (await call(client, "run_all_validations", paths=["app.py"]))["ok"]
        assert "checked only some paths" in await refused(client, "git_commit", message="x", all=True)
    _change(root, "b + a")
    async with _serve(root, sdlc={"may_skip": ["tests"]}) as client:
        assert (await call(client, "run_all_validations", skip=["tests"]))["ok"]
        assert (await call(client, "git_commit", message="test: fix", all=True))["commit"]["subject"] == "test: fix"


async def test_warn_mode_commits_and_remembers_off_mode_stays_out(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _change(root, "b + a")
    async with _serve(root, "warn") as client:
        await call(client, "git_commit", message="refactor: unvalidated", all=True)
        status = await call(client, "sdlc_status")
    assert git(root, "log", "-1", "--format=%s").strip() == "refactor: unvalidated"
    assert any("committed anyway (warn mode)" in w and "nothing was validated" in w for w in status["warnings"])
    _change(root, "a + b")
    async with _serve(root, "off") as client:
        await call(client, "git_commit", message="refactor: back", all=True)
        assert (await call(client, "sdlc_status"))["mode"] == "off"
    assert git(root, "log", "-1", "--format=%s").strip() == "refactor: back"


async def test_the_profile_sets_the_default_strictness(tmp_path: Path) -> None:
    root = _project(tmp_path)
    async with serving(root, toolsets=TOOLSETS, profile="orchestrator") as client:
        assert (await call(client, "sdlc_status"))["mode"] == "enforce"
    async with serving(root, toolsets=TOOLSETS) as client:
        assert (await call(client, "sdlc_status"))["mode"] == "warn"


async def test_steps_go_in_order_and_the_loop_survives_a_restart(tmp_path: Path) -> None:
    root = _project(tmp_path)
    async with _serve(root) as client:
        assert "implement comes after plan, consult" in await refused(
            client, "sdlc_advance", step="implement", evidence="changed app.py"
        )
        assert "say what shows" in await refused(client, "sdlc_advance", step="plan")
        await call(client, "sdlc_advance", step="plan", evidence="swap the operands of add")
        await call(client, "sdlc_advance", step="consult", evidence="architect: fine")
        assert "is not validated" in await refused(client, "sdlc_advance", step="validate")
        assert "recorded by git_commit" in await refused(client, "sdlc_advance", step="commit")
    async with _serve(root) as client:  # a new server on the same workspace: the loop is where it was
        status = await call(client, "sdlc_status")
        assert [s["step"] for s in status["steps"] if s["done"]] == ["plan", "consult"]
        assert status["steps"][0]["evidence"] == "swap the operands of add"
        after = await call(client, "sdlc_advance", step="implement", evidence="app.py")
        assert after["current"] == "implement" and after["next"].startswith("run run_all_validations")
        # Going back to plan starts the cycle over from there.
        again = await call(client, "sdlc_advance", step="plan", evidence="a better plan")
        assert [s["step"] for s in again["steps"] if s["done"]] == ["plan"]
    async with _serve(root, "warn") as client:
        warned = await call(client, "sdlc_advance", step="implement", evidence="skipping consult")
        assert "implement recorded before consult" in warned["notice"]


POLICY = """
forbidden_paths = ["vendor/**"]
max_file_lines = 12
commit_message = "conventional"
warnings = ["no-todo"]

[[forbidden_patterns]]
id = "no-print"
regex = 'print\\('
paths = ["*.py"]
message = "log through logging, not print"

[[forbidden_patterns]]
id = "no-todo"
regex = "TODO"

[[forbidden_patterns]]
id = "no-eval"
ast_grep = "eval($X)"

[[required_tests]]
modules = "lib/*.py"
tests = "test_{stem}.py"
"""


def _policy_project(root: Path) -> Path:
    _project(root)
    (root / ".tandem").mkdir()
    (root / ".tandem" / "policy.toml").write_text(POLICY)
    return root


async def test_check_policy_lists_each_violation_with_file_line_and_source(tmp_path: Path) -> None:
    root = _policy_project(tmp_path)
    (root / "vendor").mkdir()
    (root / "vendor" / "lib.js").write_text("x\n")
    (root / "app.py").write_text(
        '"""An app."""\n\n\ndef add(a, b):\n    print(a)  # TODO\n    return eval("a + b")\n' + "\n" * 10
    )
    (root / "lib").mkdir()
    (root / "lib" / "parse.py").write_text("def parse():\n    return 1\n")
    async with _serve(root) as client:
        report = await call(client, "check_policy", message="update things")
    found = {(v["rule"], v["file"], v["line"], v["level"]) for v in report["violations"]}
    assert ("vendor/**", "vendor/lib.js", None, "error") in found
    assert ("no-print", "app.py", 5, "error") in found
    assert ("no-todo", "app.py", 5, "warning") in found
    assert ("no-eval", "app.py", 6, "error") in found
    assert ("max_file_lines", "app.py", 13, "error") in found
    assert ("lib/*.py -> test_{stem}.py", "lib/parse.py", None, "error") in found
    assert ("commit_message", None, None, "error") in found
    assert not report["ok"] and report["sources"] == [".tandem/policy.toml"]
    assert all(v["source"] == ".tandem/policy.toml" for v in report["violations"])
    # test_app.py and the other untouched files are not part of the change
    assert {v["file"] for v in report["violations"]} == {"vendor/lib.js", "app.py", "lib/parse.py", None}


async def test_check_policy_on_a_diff_checks_only_its_added_lines(tmp_path: Path) -> None:
    root = _policy_project(tmp_path)
    diff = (
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -3,3 +3,4 @@\n \n"
        " def add(a: int, b: int) -> int:\n+    print(a)\n     return a + b\n"
    )
    async with _serve(root) as client:
        report = await call(client, "check_policy", diff=diff)
        clean = await call(client, "check_policy", paths=["test_app.py"])
        escape = await refused(
            client, "check_policy", diff=diff.replace("a/app.py", "a/../../etc/passwd").replace("b/app", "b/../../x")
        )
        outside = await refused(client, "check_policy", paths=["../"])
        assert "not a unified diff" in await refused(client, "check_policy", diff="@@ nonsense\n+x\n")
    assert [(v["rule"], v["file"], v["line"]) for v in report["violations"]] == [("no-print", "app.py", 5)]
    assert clean["ok"] and clean["files"] == 1 and clean["violations"] == []
    assert "outside" in escape.lower() or "escape" in escape.lower()
    assert "outside" in outside.lower() or "escape" in outside.lower()


async def test_rules_stated_in_claude_md_and_agents_md_join_the_policy(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "CLAUDE.md").write_text(
        "# Rules\n\n- Never edit `generated/**`.\n- Do not use `os.system`.\n- Keep files under 20 lines.\n"
        "- Commit messages must follow Conventional Commits.\n\n"
        '```toml tandem-policy\n[[forbidden_patterns]]\nid = "no-breakpoint"\nregex = "breakpoint\\\\(\\\\)"\n```\n'
    )
    (root / "AGENTS.md").write_text("Files must not exceed 15 lines.\n")
    (root / "generated").mkdir()
    (root / "generated" / "out.py").write_text("x = 1\n")
    (root / "app.py").write_text("import os\n\nos.system('ls')\nbreakpoint()\n" + "x = 1\n" * 14)
    async with _serve(root) as client:
        report = await call(client, "check_policy", message="stuff")
    by_rule = {v["rule"]: v for v in report["violations"]}
    assert by_rule["generated/**"]["source"] == "CLAUDE.md:3"
    assert by_rule["never use os.system"]["line"] == 3 and by_rule["never use os.system"]["source"] == "CLAUDE.md:4"
    assert by_rule["no-breakpoint"]["line"] == 4 and by_rule["no-breakpoint"]["source"].startswith("CLAUDE.md:")
    assert by_rule["max_file_lines"]["message"].startswith("18 lines, more than the 15 allowed")
    assert by_rule["max_file_lines"]["source"] == "AGENTS.md:1"
    assert by_rule["commit_message"]["source"] == "CLAUDE.md:6"
    assert report["sources"] == ["AGENTS.md", "CLAUDE.md"]


async def test_a_validated_commit_that_breaks_an_enforced_rule_is_refused(tmp_path: Path) -> None:
    root = _policy_project(tmp_path)
    _change(root, "b + a")
    async with _serve(root) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        message = await refused(client, "git_commit", message="swap the operands", all=True)
        assert "breaks the project's policy" in message and "does not follow Conventional Commits" in message
        await call(client, "git_commit", message="refactor: swap the operands", all=True)
    assert git(root, "log", "-1", "--format=%s").strip() == "refactor: swap the operands"


async def test_only_staged_files_are_checked_for_a_plain_commit(tmp_path: Path) -> None:
    root = _policy_project(tmp_path)
    (root / "notes.py").write_text('"""Notes."""\n')
    (root / "draft.py").write_text('print("draft")\n')  # untracked and not staged: not part of the commit
    git(root, "add", "notes.py")
    async with _serve(root, sdlc={"may_skip": ["lint", "tests"]}) as client:
        assert (await call(client, "run_all_validations", skip=["lint", "tests"]))["ok"]
        await call(client, "git_commit", message="docs: notes")
        (root / "notes.py").write_text('print("x")\n')
        git(root, "add", "notes.py")
        (root / "notes.py").write_text('"""Clean in the tree, not in the index."""\n')
        assert (await call(client, "run_all_validations", skip=["lint", "tests"]))["ok"]
        message = await refused(client, "git_commit", message="docs: notes again")
    assert "notes.py:1: log through logging, not print (no-print)" in message


async def test_a_broken_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / ".tandem").mkdir()
    (root / ".tandem" / "policy.toml").write_text("max_file_lines = 'many'\n[[forbidden_patterns]]\nid = 'x'\n")
    async with _serve(root) as client:
        message = await refused(client, "check_policy")
    assert message.startswith(".tandem/policy.toml: ")
    assert "max_file_lines" in message and "exactly one of regex or ast_grep" in message


async def test_a_policy_file_linked_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    root = _project(tmp_path / "repo")
    outside = tmp_path / "elsewhere.toml"
    outside.write_text("max_file_lines = 1\n")
    (root / ".tandem").mkdir()
    (root / ".tandem" / "policy.toml").symlink_to(outside)
    async with _serve(root) as client:
        message = await refused(client, "check_policy")
    assert "policy.toml" in message and str(tmp_path) not in message


async def test_a_passing_validation_recipe_validates_like_run_all_validations(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "justfile").write_text("agent-validate:\n    python3 -c 'import app; assert app.add(1, 2) == 3'\n")
    (root / ".gitignore").write_text(".tandem/\n__pycache__/\njustfile\n")
    _change(root, "b + a")
    settings = {"validation_tasks": ["agent-validate"]}
    async with serving(root, toolsets=[*TOOLSETS, "tasks"], code=CODE, sdlc={"mode": "enforce", **settings}) as client:
        assert "nothing was validated" in await refused(client, "git_commit", message="refactor: swap", all=True)
        assert not (await call(client, "run_task", name="agent-validate"))["failed"]
        status = await call(client, "sdlc_status")
        assert status["validation"]["tool"] == "run_task:agent-validate" and status["commit_allowed"]
        await call(client, "git_commit", message="refactor: swap", all=True)
        _change(root, "a - b")
        assert (await call(client, "run_task", name="agent-validate"))["failed"]
        assert "the last validation (run_task:agent-validate) failed" in await refused(
            client, "git_commit", message="fix: broken", all=True
        )
    assert git(root, "log", "-1", "--format=%s").strip() == "refactor: swap"


async def test_the_index_is_what_is_checked_not_the_work_tree(tmp_path: Path) -> None:
    """A broken version staged and the good one back in the work tree: the commit would record the broken one."""
    root = _project(tmp_path)
    _change(root, "a - b")
    git(root, "add", "app.py")
    _change(root, "a + b")
    async with _serve(root) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        message = await refused(client, "git_commit", message="fix: broken index")
        assert "did not check: app.py (not validated)" in message
        git(root, "add", "app.py")  # now the index holds what was validated
        await call(client, "git_commit", message="fix: the index as validated", allow_empty=True)
    assert "return a + b" in git(root, "show", "HEAD:app.py")


async def test_a_tree_changed_while_the_validation_ran_is_not_validated(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "justfile").write_text("agent-validate:\n    echo 'x = 1' > late.py\n")
    (root / ".gitignore").write_text(".tandem/\n__pycache__/\njustfile\n")
    _change(root, "b + a")
    sdlc = {"mode": "enforce", "validation_tasks": ["agent-validate"]}
    async with serving(root, toolsets=[*TOOLSETS, "tasks"], code=CODE, sdlc=sdlc) as client:
        assert not (await call(client, "run_task", name="agent-validate"))["failed"]
        status = await call(client, "sdlc_status")
        message = await refused(client, "git_commit", message="refactor: swap", all=True)
    assert status["validation"]["why_not"] == "the work tree changed while it ran; run it again"
    assert "the work tree changed while it ran" in message


async def test_a_commit_in_a_nested_repository_is_checked_against_that_repository(tmp_path: Path) -> None:
    (tmp_path / "outer").mkdir()
    root = tmp_path / "outer"
    (root / "lib").mkdir()
    inner = _project(root / "lib")  # the workspace root is not a repository; lib/ is
    async with _serve(root, "warn") as client:
        _change(inner, "b + a")
        await call(client, "git_commit", message="refactor: unvalidated", all=True, repo="lib")
        warned = (await call(client, "sdlc_status"))["warnings"]
    assert "nothing was validated" in warned[-1]
    assert git(inner, "log", "-1", "--format=%s").strip() == "refactor: unvalidated"
    _change(inner, "a + b")
    async with _serve(root) as client:
        report = await call(client, "run_all_validations")
        assert report["ok"], [(s["name"], s["status"], s["summary"]) for s in report["steps"]]
        status = await call(client, "sdlc_status")
        (inner / "app.py").write_text("def add(a, b):\n    return a - b\n")
        message = await refused(client, "git_commit", message="fix: later", all=True, repo="lib")
    assert status["commit_allowed"] and "did not check: app.py (not validated)" in message


async def test_untracked_nested_repositories_and_odd_file_names_can_be_validated(tmp_path: Path) -> None:
    root = _project(tmp_path)
    nested = root / "vendored"
    nested.mkdir()
    git(nested, "init", "-q")  # an untracked clone without commits
    (nested / "x.txt").write_text("x\n")
    (root / "we\nird name.txt").write_text("odd\n")
    async with _serve(root) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        status = await call(client, "sdlc_status")
        await call(client, "git_add", paths=["we\nird name.txt"])
        await call(client, "git_commit", message="docs: an odd name")
    assert status["validation"]["current"] and status["validation"]["counts"]
    assert "we\nird name.txt" in git(root, "ls-tree", "-r", "-z", "--name-only", "HEAD").split("\0")


async def test_commands_that_make_commits_are_refused_outside_git_commit(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _change(root, "a - b")
    toolsets = [*TOOLSETS, "workspace"]
    async with serving(root, toolsets=toolsets, code=CODE, sdlc={"mode": "enforce"}) as client:
        message = await refused(client, "execute_command", argv=["git", "-C", ".", "commit", "-qam", "sneak"])
        assert "commits go through git_commit" in message
        assert "commits go through git_commit" in await refused(
            client, "execute_command", command="git -c user.name=x merge --no-edit main"
        )
        listed = await call(client, "execute_command", argv=["git", "log", "--oneline"])
    async with serving(root, toolsets=toolsets, code=CODE, sdlc={"mode": "warn"}) as client:
        await call(client, "execute_command", argv=["git", "commit", "-qam", "warned"])
    assert listed["exit_code"] == 0 and "feat: start" in listed["stdout"]
    assert git(root, "log", "-1", "--format=%s").strip() == "warned"


async def test_instruction_files_out_of_the_workspace_are_left_out_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    root = _project(tmp_path / "repo")
    (tmp_path / "shared.md").write_text("- Never edit `app.py`.\n")
    (root / "CLAUDE.md").symlink_to(tmp_path / "shared.md")
    async with _serve(root, "warn") as client:
        report = await call(client, "check_policy")
        _change(root, "b + a")
        await call(client, "git_commit", message="refactor: swap", all=True)
    assert report["ok"] and any("CLAUDE.md is left out" in n for n in report["notes"])
    assert git(root, "log", "-1", "--format=%s").strip() == "refactor: swap"


async def test_prose_with_conditions_or_negations_makes_no_rules(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "CLAUDE.md").write_text(
        "- Never use `os.system`; use `subprocess.run` instead.\n"
        "- Do not edit files outside `src/`.\n"
        "- Don't change `pyproject.toml` without running `uv lock`.\n"
        "- Keep functions small: no function over 30 lines.\n"
        "- Files may be longer than 100 lines when they are generated.\n"
        "- The `config` module is over 300 lines long.\n"
        "- Commit messages don't need to follow Conventional Commits.\n"
        "- Never use `print`.\n"
        "- " + "the file must not exceed " * 2000 + "\n"
    )
    (root / "app.py").write_text("import subprocess\n\nfingerprint = subprocess.run\nprint(1)\n")
    async with _serve(root) as client:
        report = await call(client, "check_policy", message="whatever")
    assert [(v["rule"], v["line"]) for v in report["violations"]] == [("never use print", 4)]
    assert report["rules"] == 1


async def test_assume_unchanged_entries_do_not_hide_the_work_tree(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _change(root, "a - b")
    git(root, "add", "app.py")
    git(root, "update-index", "--assume-unchanged", "app.py")
    _change(root, "a + b")  # the work tree is good, the index (hidden from git status) is broken
    async with _serve(root) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        message = await refused(client, "git_commit", message="fix: hidden")
    assert "did not check: app.py (not validated)" in message


async def test_git_through_execute_command_only_reads_in_enforce_mode(tmp_path: Path) -> None:
    root = _project(tmp_path)
    git(root, "config", "alias.ci", "commit")
    toolsets = [*TOOLSETS, "workspace"]
    async with serving(root, toolsets=toolsets, code=CODE, sdlc={"mode": "enforce"}) as client:
        assert "not ci" in await refused(client, "execute_command", argv=["git", "ci", "-qam", "sneak"])
        assert "not commit" in await refused(
            client, "execute_command", command="env GIT_PAGER=cat git -c a=b commit -qam sneak"
        )
        fine = [
            await call(client, "execute_command", argv=["git", "log", "--grep=commit", "--oneline"]),
            await call(client, "execute_command", command="git --no-pager grep -n commit"),
            await call(client, "execute_command", argv=["echo", "git", "commit"]),
        ]
    assert [r["exit_code"] for r in fine] == [0, 1, 0] and fine[2]["stdout"] == "git commit\n"
    assert git(root, "log", "-1", "--format=%s").strip() == "feat: start"


async def test_an_amend_is_checked_against_the_commit_before_head(tmp_path: Path) -> None:
    root = _policy_project(tmp_path)
    (root / "vendor").mkdir()
    (root / "vendor" / "x.py").write_text("x = 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "chore: vendor")  # made outside Tandem, breaking the policy
    async with _serve(root, sdlc={"may_skip": ["lint", "tests"]}) as client:
        assert (await call(client, "run_all_validations", skip=["lint", "tests"]))["ok"]
        message = await refused(client, "git_commit", message="chore: vendor again", amend=True)
    assert "vendor/x.py: changes a forbidden path (vendor/**)" in message


def _hook_that_rewrites(root: Path) -> None:
    """A pre-commit hook that changes app.py and stages it: the commit records a file the guard did not check (as
    another writer changing it between the check and the commit would make it)."""
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nprintf '# reformatted by the hook\\n' >> app.py\ngit add app.py\n")
    hook.chmod(0o755)


async def test_a_commit_that_records_files_changed_after_the_check_is_undone(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _change(root, "b + a")
    before = git(root, "rev-parse", "HEAD").strip()
    _hook_that_rewrites(root)
    async with _serve(root, git={"hooks": True}) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        message = await refused(client, "git_commit", message="refactor: swap", all=True)
        status = await call(client, "sdlc_status")
    assert message.startswith("commit undone (sdlc mode enforce)") and "app.py" in message
    assert "another writer, or a hook" in message and "validate again" in message
    assert git(root, "rev-parse", "HEAD").strip() == before  # the branch is back where it was
    undone = git(root, "reflog", "-1", "--format=%gs").strip()
    assert undone == "tandem sdlc: commit undone, it recorded files the guard did not check"
    staged = git(root, "diff", "--cached", "--name-only").split()
    assert staged == ["app.py"] and "reformatted by the hook" in (root / "app.py").read_text()  # nothing lost
    assert status["commits"] == []


async def test_warn_mode_keeps_such_a_commit_and_warns(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _change(root, "b + a")
    _hook_that_rewrites(root)
    async with _serve(root, "warn", git={"hooks": True}) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        committed = await call(client, "git_commit", message="refactor: swap", all=True)
        status = await call(client, "sdlc_status")
    assert git(root, "log", "-1", "--format=%s").strip() == "refactor: swap"
    assert status["commits"] == [committed["commit"]["sha"]]
    assert any("committed anyway (warn mode)" in w and "app.py" in w for w in status["warnings"])


async def test_a_commit_of_exactly_what_was_checked_stands_with_hooks_on(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _change(root, "b + a")
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    async with _serve(root, git={"hooks": True}) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        committed = await call(client, "git_commit", message="refactor: swap", all=True)
    assert git(root, "rev-parse", "HEAD").strip() == committed["commit"]["sha"]


def _hooks(root: Path, **scripts: str) -> None:
    for name, body in scripts.items():
        hook = root / ".git" / "hooks" / name
        hook.write_text(f"#!/bin/sh\n{body}\n")
        hook.chmod(0o755)


REWRITE = "printf '# reformatted by the hook\\n' >> app.py && git add app.py"


async def test_an_unchecked_commit_is_undone_on_a_detached_head_and_after_an_amend(tmp_path: Path) -> None:
    root = _project(tmp_path)
    git(root, "checkout", "-q", "--detach")
    before = git(root, "rev-parse", "HEAD").strip()
    _change(root, "b + a")
    _hooks(root, **{"pre-commit": REWRITE})
    async with _serve(root, git={"hooks": True}) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        detached = await refused(client, "git_commit", message="refactor: swap", all=True)
        assert git(root, "rev-parse", "HEAD").strip() == before  # HEAD itself moved back
        git(root, "checkout", "-q", "main")
        git(root, "reset", "-q", "--hard", before)
        _change(root, "b + a")
        assert (await call(client, "run_all_validations"))["ok"]
        amended = await refused(client, "git_commit", message="feat: start, amended", all=True, amend=True)
    assert detached.startswith("commit undone") and amended.startswith("commit undone")
    assert git(root, "rev-parse", "main").strip() == before  # the amended commit is gone, the one it replaced back
    assert git(root, "log", "-1", "--format=%s", "main").strip() == "feat: start"


async def test_an_unchecked_commit_is_not_undone_where_that_could_lose_or_misplace_work(tmp_path: Path) -> None:
    """A post-commit hook stands for another writer: one that switches to another branch, one that commits on top.
    Neither branch is moved; the call says the commit stands, and the loop records it."""
    root = _project(tmp_path)
    git(root, "branch", "other")
    other = git(root, "rev-parse", "other").strip()
    _change(root, "b + a")
    _hooks(root, **{"pre-commit": REWRITE, "post-commit": "git checkout -q other"})
    async with _serve(root, git={"hooks": True}) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        switched = await refused(client, "git_commit", message="refactor: swap", all=True)
    assert "was not undone" in switched and "app.py" in switched
    assert git(root, "rev-parse", "other").strip() == other  # an unrelated branch is never reset
    assert git(root, "log", "-1", "--format=%s", "main").strip() == "refactor: swap"

    git(root, "checkout", "-q", "main")
    _change(root, "a + b")
    _hooks(
        root, **{"post-commit": "test -e .on-top || { touch .on-top; git add .on-top; git commit -qm 'other writer'; }"}
    )
    async with _serve(root, git={"hooks": True}) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        on_top = await refused(client, "git_commit", message="refactor: back", all=True)
        status = await call(client, "sdlc_status")
    assert "was not undone" in on_top
    assert git(root, "log", "-2", "--format=%s").split("\n")[:2] == ["other writer", "refactor: back"]
    assert len(status["commits"]) == 2  # both calls' commits stand, and the loop knows them


async def test_a_first_commit_that_recorded_unchecked_files_stands_and_says_so(tmp_path: Path) -> None:
    root = _project(tmp_path, commit=False)
    _hooks(root, **{"pre-commit": REWRITE})
    async with _serve(root, git={"hooks": True}) as client:
        assert (await call(client, "run_all_validations"))["ok"]
        message = await refused(client, "git_commit", message="feat: first")
    assert "was not undone (it is the branch's first commit)" in message
    assert git(root, "log", "-1", "--format=%s").strip() == "feat: first"
