"""Writing the backlog: create a task, edit one, complete one; every file written atomically, in the CLI's format."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from tandem.core import CallContext, ToolError
from tandem.core.workspace_path import make_directories, rename_in_workspace
from tandem.toolsets.backlog.project import COMPLETED, Project, Task, now
from tandem.toolsets.backlog.sections import Body, Criterion
from tandem.toolsets.backlog.toolset import toolset
from tandem.toolsets.backlog.views import TaskDetail

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MARKER = re.compile(r"<!--\s*(?:SECTION:[A-Z_]+|AC|DOD|COMMENTS?):(?:BEGIN|END)\s*-->", re.IGNORECASE)
MAX_TITLE = 200
_WRITING = threading.Lock()
"""One write at a time in this server: the next id is read, then claimed by writing its file (the CLI takes a lock
file for the same reason; that one is its own)."""

Line = Annotated[str, Field(min_length=1, max_length=500)]
Text = Annotated[str, Field(max_length=100_000)]
Indexes = Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=100)]


class TaskWritten(BaseModel):
    action: Literal["created", "edited", "completed"]
    changed: list[str] = Field(description="The fields and sections this call changed.")
    moved_to: str | None = Field(None, description="Where the file went, when it was moved to backlog/completed.")
    unchecked_criteria: list[str] = Field(
        default_factory=list, description="Acceptance criteria still unchecked (a completed task usually has none)."
    )
    task: TaskDetail

    def summary(self) -> str:
        head = f"{self.action.capitalize()} {self.task.id} - {self.task.title} ({self.task.status}) at {self.task.path}"
        if self.changed and self.action != "created":
            head += f"; changed: {', '.join(self.changed)}"
        if self.unchecked_criteria:
            head += "\nStill unchecked: " + "; ".join(self.unchecked_criteria)
        return head


def _locked(write: Callable[[], TaskWritten]) -> TaskWritten:
    with _WRITING:
        return write()


def _line(value: str, what: str) -> str:
    """A one-line value (title, label, name, criterion): trimmed, non-empty, no line breaks or control characters."""
    text = value.strip()
    if not text:
        raise ToolError(f"the {what} is empty")
    if _CONTROL.search(text):
        raise ToolError(f"the {what} {text[:60]!r} holds a line break or control character; give it on one line")
    return text


def _lines(values: list[str] | None, what: str) -> list[str]:
    return [] if values is None else list(dict.fromkeys(_line(value, what) for value in values))


def _markdown(value: str, what: str) -> str:
    """Section text: any Markdown except the comment markers that fence the sections (they would split the file)."""
    if _MARKER.search(value):
        raise ToolError(f"the {what} contains a Backlog.md section marker (<!-- ...:BEGIN/END -->); leave those out")
    return value.replace("\r\n", "\n").strip()


def _title(value: str) -> str:
    title = _line(value, "title")
    if len(title) > MAX_TITLE:
        raise ToolError(
            f"the title is {len(title)} characters; keep it to {MAX_TITLE} and put the rest in the description"
        )
    return title


def _dependencies(project: Project, tasks: list[Task], ids: list[str], own_id: str | None) -> list[str]:
    found = []
    for dependency in ids:
        task = project.find(dependency, tasks)
        if own_id is not None and project.id_key(task.id) == project.id_key(own_id):
            raise ToolError(f"{own_id} cannot depend on itself")
        found.append(task.id)
    return list(dict.fromkeys(found))


@toolset.tool(destructive=False, title="Create a backlog task")
async def task_create(
    ctx: CallContext,
    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE)],
    description: Text | None = None,
    status: Annotated[str | None, Field(description="A configured status; the backlog's default when omitted.")] = None,
    labels: list[Line] | None = None,
    assignee: Annotated[
        list[Line] | None, Field(description="Names such as '@ada'; the backlog's default_assignee when omitted.")
    ] = None,
    priority: Annotated[str | None, Field(description="A configured priority (high, medium, low by default).")] = None,
    acceptance_criteria: Annotated[list[Line] | None, Field(max_length=100)] = None,
    parent: Annotated[
        str | None, Field(description="Make it a subtask of this task (its id becomes PARENT.n).")
    ] = None,
    dependencies: Annotated[list[str] | None, Field(description="Ids of existing tasks this one depends on.")] = None,
    plan: Text | None = None,
    notes: Text | None = None,
    milestone: Line | None = None,
) -> TaskWritten:
    """Create a Backlog.md task the way ``backlog task create`` does: the next id (subtasks number under their
    parent), the file ``backlog/tasks/task-<id> - <Title>.md``, the status checked against ``config.yml``, the
    configured Definition of Done items added, created_date in UTC."""

    def create() -> TaskWritten:
        project = Project.open(ctx)
        tasks = project.load()
        clean_title = _title(title)
        parent_task = project.find(parent, tasks) if parent is not None else None
        task_id = project.next_id(tasks, parent_task)
        path, shown = project.new_task_path(task_id, clean_title)
        if path.exists():
            raise ToolError(f"{shown} already exists; the backlog's ids look out of step: run 'backlog doctor'")
        people = _lines(assignee, "assignee") if assignee is not None else project.list_of("default_assignee")
        fields: dict[str, Any] = {
            "id": task_id,
            "title": clean_title,
            "status": project.canonical_status(status) if status is not None else project.default_status,
            "assignee": people,
            "created_date": now(),
            "labels": _lines(labels, "label"),
            "dependencies": _dependencies(project, tasks, dependencies or [], None),
        }
        if milestone is not None:
            fields["milestone"] = _line(milestone, "milestone")
        if parent_task is not None:
            fields["parent_task_id"] = parent_task.id
        if priority is not None:
            fields["priority"] = project.canonical_priority(priority)
        ordinal = project.next_ordinal(tasks)
        if ordinal is not None:
            fields["ordinal"] = ordinal
        body = Body()
        if description is not None:
            body.set_text("description", _markdown(description, "description"))
        criteria = _lines(acceptance_criteria, "acceptance criterion")
        body.set_checklist(
            "acceptance_criteria", [Criterion(index=i, text=t, checked=False) for i, t in enumerate(criteria, 1)]
        )
        done = project.list_of("definition_of_done")
        body.set_checklist(
            "definition_of_done", [Criterion(index=i, text=t, checked=False) for i, t in enumerate(done, 1)]
        )
        if plan is not None:
            body.set_text("plan", _markdown(plan, "plan"))
        if notes is not None:
            body.set_text("notes", _markdown(notes, "notes"))
        task = Task(path, shown, fields, body, completed_folder=False)
        project.save(task)
        return TaskWritten(action="created", changed=sorted(fields), task=TaskDetail.of(task))

    return await ctx.run_sync(lambda: _locked(create))


def _set(task: Task, changed: list[str], name: str, value: Any) -> None:
    if task.fields.get(name) != value:
        if value in (None, "", []) and name not in ("assignee", "labels", "dependencies"):
            task.fields.pop(name, None)
        else:
            task.fields[name] = value
        changed.append(name)


def _checklist_edit(
    task: Task,
    key: str,
    what: str,
    changed: list[str],
    check: list[int] | None = None,
    uncheck: list[int] | None = None,
    remove: list[int] | None = None,
    add: list[str] | None = None,
) -> None:
    """Check, uncheck and remove by the numbers the task shows now, then add; the list is renumbered from 1."""
    items = task.body.checklist(key)
    for index in [*(check or []), *(uncheck or []), *(remove or [])]:
        if index > len(items):
            raise ToolError(f"{task.id} has {len(items)} {what} items; there is no #{index} (see task_view)")
    for index in check or []:
        items[index - 1].checked = True
    for index in uncheck or []:
        items[index - 1].checked = False
    gone = set(remove or [])
    kept = [item for item in items if item.index not in gone]
    kept += [Criterion(index=0, text=text, checked=False) for text in _lines(add, f"{what} item")]
    before = task.body.render()
    task.body.set_checklist(key, [Criterion(index=i, text=c.text, checked=c.checked) for i, c in enumerate(kept, 1)])
    if task.body.render() != before:
        changed.append(key)


@toolset.tool(destructive=True, title="Edit a backlog task")
async def task_edit(
    ctx: CallContext,
    id: Annotated[str, Field(description="The task id: TASK-3, task-3 or 3.")],
    title: Annotated[
        str | None, Field(max_length=MAX_TITLE, description="A new title (the file keeps its name, as the CLI does).")
    ] = None,
    description: Annotated[Text | None, Field(description="Replaces the description; empty removes it.")] = None,
    status: str | None = None,
    assignee: Annotated[
        list[Line] | None, Field(description="Replaces all assignees; [] leaves it unassigned.")
    ] = None,
    labels: Annotated[list[Line] | None, Field(description="Replaces all labels; [] removes them.")] = None,
    add_labels: list[Line] | None = None,
    remove_labels: list[Line] | None = None,
    priority: Annotated[str | None, Field(description="A configured priority; empty clears it.")] = None,
    dependencies: Annotated[list[str] | None, Field(description="Replaces the dependencies; [] clears them.")] = None,
    add_acceptance_criteria: Annotated[list[Line] | None, Field(max_length=100)] = None,
    check_acceptance_criteria: Annotated[Indexes | None, Field(description="Numbers (#n) to check.")] = None,
    uncheck_acceptance_criteria: Indexes | None = None,
    remove_acceptance_criteria: Indexes | None = None,
    check_definition_of_done: Indexes | None = None,
    uncheck_definition_of_done: Indexes | None = None,
    plan: Annotated[Text | None, Field(description="Replaces the implementation plan.")] = None,
    notes: Annotated[Text | None, Field(description="Replaces the implementation notes.")] = None,
    append_notes: Annotated[Text | None, Field(description="Added to the notes after a blank line.")] = None,
    final_summary: Text | None = None,
) -> TaskWritten:
    """Change a Backlog.md task like ``backlog task edit``: fields, acceptance criteria (add, check, uncheck,
    remove by their #number; checks apply before removals, additions come last), definition-of-done checks, plan,
    notes (replace or append) and final summary. ``updated_date`` is set when anything changed."""

    def edit() -> TaskWritten:
        project = Project.open(ctx)
        tasks = project.load()
        task = project.find(id, tasks)
        changed: list[str] = []
        if title is not None:
            _set(task, changed, "title", _title(title))
        if status is not None:
            _set(task, changed, "status", project.canonical_status(status))
        if assignee is not None:
            _set(task, changed, "assignee", _lines(assignee, "assignee"))
        if labels is not None or add_labels or remove_labels:
            current = _lines(labels, "label") if labels is not None else task.strings("labels")
            dropped = {label.lower() for label in _lines(remove_labels, "label")}
            merged = [label for label in current if label.lower() not in dropped]
            merged += [
                label for label in _lines(add_labels, "label") if label.lower() not in {m.lower() for m in merged}
            ]
            _set(task, changed, "labels", merged)
        if priority is not None:
            _set(task, changed, "priority", project.canonical_priority(priority) if priority.strip() else None)
        if dependencies is not None:
            _set(task, changed, "dependencies", _dependencies(project, tasks, dependencies, task.id))
        _checklist_edit(
            task,
            "acceptance_criteria",
            "acceptance criteria",
            changed,
            check_acceptance_criteria,
            uncheck_acceptance_criteria,
            remove_acceptance_criteria,
            add_acceptance_criteria,
        )
        _checklist_edit(
            task,
            "definition_of_done",
            "definition of done",
            changed,
            check_definition_of_done,
            uncheck_definition_of_done,
        )
        new_notes = _markdown(notes, "notes") if notes is not None else None
        if append_notes is not None:
            existing = new_notes if new_notes is not None else task.body.text("notes")
            addition = _markdown(append_notes, "notes")
            new_notes = f"{existing}\n\n{addition}" if existing and addition else existing or addition
        for key, value in (
            ("description", description),
            ("plan", plan),
            ("notes", new_notes),
            ("final_summary", final_summary),
        ):
            if value is not None:
                text = value if key == "notes" else _markdown(value, key.replace("_", " "))
                if text != task.body.text(key):
                    task.body.set_text(key, text)
                    changed.append(key)
        if not changed:
            raise ToolError(f"nothing to change in {task.id}: every value given is what the task already has")
        task.fields["updated_date"] = now()
        project.save(task)
        return TaskWritten(
            action="edited", changed=changed, task=TaskDetail.of(task), unchecked_criteria=_unchecked(task)
        )

    return await ctx.run_sync(lambda: _locked(edit))


def _unchecked(task: Task) -> list[str]:
    return [f"#{c.index} {c.text}" for c in task.body.checklist("acceptance_criteria") if not c.checked]


@toolset.tool(destructive=False, idempotent=True, title="Complete a backlog task")
async def task_complete(
    ctx: CallContext,
    id: Annotated[str, Field(description="The task id: TASK-3, task-3 or 3.")],
    final_summary: Annotated[Text | None, Field(description="What was done, for the task's Final Summary.")] = None,
    move_to_completed: Annotated[
        bool,
        Field(
            description="Also move the file to backlog/completed, as 'backlog task complete' does (it then leaves "
            "the board and 'backlog task list'); by default it stays on the board in the done column."
        ),
    ] = False,
) -> TaskWritten:
    """Mark a Backlog.md task done: its status becomes the backlog's last configured status (``Done`` by default),
    the way ``backlog task edit <id> -s Done`` does, with ``updated_date`` set and an optional final summary.
    The result lists acceptance criteria still unchecked."""

    def complete() -> TaskWritten:
        project = Project.open(ctx)
        task = project.find(id)
        changed: list[str] = []
        _set(task, changed, "status", project.terminal_status)
        if final_summary is not None:
            text = _markdown(final_summary, "final summary")
            if text != task.body.text("final_summary"):
                task.body.set_text("final_summary", text)
                changed.append("final_summary")
        if changed:
            task.fields["updated_date"] = now()
            project.save(task)
        moved_to = None
        if move_to_completed and not task.completed_folder:
            shown = f"{project.shown}/{COMPLETED}/{task.path.name}"
            target = ctx.path(shown)
            make_directories(ctx.workspace, target.parent)
            rename_in_workspace(ctx.workspace, task.path, target)
            task.path, task.shown, task.completed_folder, moved_to = target, shown, True, shown
        return TaskWritten(
            action="completed",
            changed=changed,
            moved_to=moved_to,
            task=TaskDetail.of(task),
            unchecked_criteria=_unchecked(task),
        )

    return await ctx.run_sync(lambda: _locked(complete))
