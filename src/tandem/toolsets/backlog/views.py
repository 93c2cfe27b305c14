"""How a task is shown to a client: a one-line summary for listings, every field and section for a view."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tandem.toolsets.backlog.project import Task
from tandem.toolsets.backlog.sections import Comment, Criterion

_SHOWN_FIELDS = {
    "id", "title", "status", "assignee", "reporter", "created_date", "updated_date", "due_date", "labels",
    "milestone", "dependencies", "references", "documentation", "modified_files", "parent_task_id", "priority",
    "type", "project", "ordinal",
}  # fmt: skip


class TaskSummary(BaseModel):
    id: str
    title: str
    status: str
    assignee: list[str]
    labels: list[str]
    priority: str | None = None
    parent: str | None = Field(None, description="The parent task's id, for a subtask.")
    criteria_checked: int = Field(description="Acceptance criteria checked so far.")
    criteria_total: int
    path: str = Field(description="The task file, relative to the workspace root.")
    completed_folder: bool = Field(description="Whether the file was moved to backlog/completed (cleaned up).")

    @classmethod
    def of(cls, task: Task) -> TaskSummary:
        criteria = task.body.checklist("acceptance_criteria")
        return cls(
            id=task.id,
            title=task.title,
            status=task.status,
            assignee=task.strings("assignee"),
            labels=task.strings("labels"),
            priority=task.text("priority"),
            parent=task.text("parent_task_id"),
            criteria_checked=sum(c.checked for c in criteria),
            criteria_total=len(criteria),
            path=task.shown,
            completed_folder=task.completed_folder,
        )

    def line(self) -> str:
        extras = [f"[{self.priority}]"] if self.priority else []
        extras += [", ".join(self.assignee)] if self.assignee else []
        extras += [f"labels: {', '.join(self.labels)}"] if self.labels else []
        extras += [f"ac {self.criteria_checked}/{self.criteria_total}"] if self.criteria_total else []
        return f"{self.id} - {self.title}" + (f" ({'; '.join(extras)})" if extras else "")


class TaskDetail(BaseModel):
    id: str
    title: str
    status: str
    assignee: list[str]
    reporter: str | None = None
    labels: list[str]
    priority: str | None = None
    milestone: str | None = None
    parent: str | None = None
    dependencies: list[str]
    created_date: str | None = None
    updated_date: str | None = None
    due_date: str | None = None
    ordinal: float | None = None
    references: list[str]
    documentation: list[str]
    description: str
    acceptance_criteria: list[Criterion]
    definition_of_done: list[Criterion]
    plan: str = Field(description="The Implementation Plan section.")
    notes: str = Field(description="The Implementation Notes section.")
    comments: list[Comment]
    final_summary: str
    other_fields: dict[str, Any] = Field(description="Frontmatter fields besides the ones above, as read.")
    path: str
    completed_folder: bool

    @classmethod
    def of(cls, task: Task) -> TaskDetail:
        ordinal = task.fields.get("ordinal")
        return cls(
            id=task.id,
            title=task.title,
            status=task.status,
            assignee=task.strings("assignee"),
            reporter=task.text("reporter"),
            labels=task.strings("labels"),
            priority=task.text("priority"),
            milestone=task.text("milestone"),
            parent=task.text("parent_task_id"),
            dependencies=task.strings("dependencies"),
            created_date=task.text("created_date"),
            updated_date=task.text("updated_date"),
            due_date=task.text("due_date"),
            ordinal=ordinal if isinstance(ordinal, int | float) and not isinstance(ordinal, bool) else None,
            references=task.strings("references"),
            documentation=task.strings("documentation"),
            description=task.body.text("description"),
            acceptance_criteria=task.body.checklist("acceptance_criteria"),
            definition_of_done=task.body.checklist("definition_of_done"),
            plan=task.body.text("plan"),
            notes=task.body.text("notes"),
            comments=task.body.comments(),
            final_summary=task.body.text("final_summary"),
            other_fields={k: _jsonable(v) for k, v in task.fields.items() if k not in _SHOWN_FIELDS},
            path=task.shown,
            completed_folder=task.completed_folder,
        )

    def summary(self) -> str:
        lines = [f"{self.id} - {self.title}", f"Status: {self.status}"]
        for label, value in (
            ("Priority", self.priority),
            ("Assignee", ", ".join(self.assignee)),
            ("Labels", ", ".join(self.labels)),
            ("Milestone", self.milestone),
            ("Parent", self.parent),
            ("Depends on", ", ".join(self.dependencies)),
            ("Created", self.created_date),
            ("Updated", self.updated_date),
            ("File", self.path),
        ):
            if value:
                lines.append(f"{label}: {value}")
        lines += ["", "Description:", self.description or "(none)"]
        if self.acceptance_criteria:
            lines += ["", "Acceptance Criteria:", *(_item(c) for c in self.acceptance_criteria)]
        if self.definition_of_done:
            lines += ["", "Definition of Done:", *(_item(c) for c in self.definition_of_done)]
        for title, text in (
            ("Implementation Plan", self.plan),
            ("Implementation Notes", self.notes),
            ("Final Summary", self.final_summary),
        ):
            if text:
                lines += ["", f"{title}:", text]
        for comment in self.comments:
            lines += [
                "",
                f"Comment #{comment.index} ({comment.author or 'anonymous'}, {comment.created}):",
                comment.body,
            ]
        return "\n".join(lines)


def _item(criterion: Criterion) -> str:
    return f"- [{'x' if criterion.checked else ' '}] #{criterion.index} {criterion.text}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)
