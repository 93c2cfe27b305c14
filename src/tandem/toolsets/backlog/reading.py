"""Reading the backlog: list with filters, view one task whole, fuzzy search over titles and bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from tandem.core import CallContext
from tandem.toolsets.backlog.project import Project, Task
from tandem.toolsets.backlog.toolset import toolset
from tandem.toolsets.backlog.views import TaskDetail, TaskSummary

MAX_LISTED = 500


class Backlog(BaseModel):
    backlog: str = Field(description="The backlog directory, relative to the workspace root.")
    statuses: list[str] = Field(description="The configured statuses, in board order.")
    tasks: list[TaskSummary]
    matched: int = Field(description="Tasks that passed the filters (more than listed when truncated).")
    truncated: bool = False
    skipped: list[str] = Field(default_factory=list, description="Task files that could not be read, and why.")

    def summary(self) -> str:
        if not self.tasks:
            return f"No tasks in {self.backlog} match." + _skipped(self.skipped)
        groups: dict[str, list[TaskSummary]] = {}
        for task in self.tasks:
            groups.setdefault(task.status, []).append(task)
        order = self.statuses + [status for status in groups if status not in self.statuses]
        parts = [
            f"{status}:\n" + "\n".join(f"  {t.line()}" for t in groups[status]) for status in order if status in groups
        ]
        tail = f"\n[{self.matched - len(self.tasks)} more not listed; narrow the filters]" if self.truncated else ""
        return "\n\n".join(parts) + tail + _skipped(self.skipped)


def _skipped(skipped: list[str]) -> str:
    return ("\n\nNot readable:\n" + "\n".join(f"  {line}" for line in skipped)) if skipped else ""


def _matches(task: Task, status: str | None, label: str | None, assignee: str | None) -> bool:
    if status is not None and task.status.lower() != status.strip().lower():
        return False
    if label is not None and label.strip().lower() not in {item.lower() for item in task.strings("labels")}:
        return False
    if assignee is not None:
        wanted = assignee.strip().lstrip("@").lower()
        if wanted not in {item.lstrip("@").lower() for item in task.strings("assignee")}:
            return False
    return True


@toolset.tool(read_only=True, title="List backlog tasks")
async def read_backlog(
    ctx: CallContext,
    status: Annotated[str | None, Field(description="Only tasks in this status (case-insensitive).")] = None,
    label: Annotated[str | None, Field(description="Only tasks carrying this label.")] = None,
    assignee: Annotated[str | None, Field(description="Only tasks assigned to this name ('@' optional).")] = None,
    include_completed: Annotated[
        bool, Field(description="Also list tasks cleaned up into backlog/completed (the CLI's list leaves them out).")
    ] = False,
) -> Backlog:
    """List the workspace's Backlog.md tasks (``backlog/tasks``), grouped by status like ``backlog task list``.

    Each task shows its id, title, status, assignees, labels, priority and acceptance-criteria progress. Filters
    combine; statuses compare case-insensitively. Use ``task_view`` for one task's whole content.
    """

    def listing() -> Backlog:
        project = Project.open(ctx)
        if status is not None:
            project.canonical_status(status)
        tasks = [task for task in project.load() if include_completed or not task.completed_folder]
        chosen = [TaskSummary.of(task) for task in tasks if _matches(task, status, label, assignee)]
        return Backlog(
            backlog=project.shown,
            statuses=project.statuses,
            tasks=chosen[:MAX_LISTED],
            matched=len(chosen),
            truncated=len(chosen) > MAX_LISTED,
            skipped=project.skipped,
        )

    return await ctx.run_sync(listing)


@toolset.tool(read_only=True, title="View a backlog task")
async def task_view(
    ctx: CallContext, id: Annotated[str, Field(description="The task id: TASK-3, task-3 or 3 (subtasks: 3.1).")]
) -> TaskDetail:
    """Everything in one Backlog.md task: its frontmatter fields, description, acceptance criteria (with their
    checked state and numbers), definition of done, implementation plan and notes, comments and final summary."""

    def view() -> TaskDetail:
        project = Project.open(ctx)
        return TaskDetail.of(project.find(id))

    return await ctx.run_sync(view)


class SearchHit(BaseModel):
    id: str
    title: str
    status: str
    score: float = Field(description="0-100: how well the query matches (100 is exact).")
    matched_in: str = Field(description="Where the best match is: id, title, labels, or a section's name.")
    snippet: str = Field(description="The best-matching line.")
    path: str


class SearchResults(BaseModel):
    query: str
    hits: list[SearchHit]
    searched: int = Field(description="Tasks searched.")

    def summary(self) -> str:
        if not self.hits:
            return f"No task matches {self.query!r} ({self.searched} searched)."
        lines = [f"{len(self.hits)} tasks match {self.query!r}:"]
        lines += [
            f"  {h.id} - {h.title} ({h.status}) [score {h.score:.0f}, {h.matched_in}: {h.snippet}]" for h in self.hits
        ]
        return "\n".join(lines)


def _texts(task: Task) -> list[tuple[str, str]]:
    """The searchable lines of a task, each with where it comes from."""
    body = task.body
    parts = [("title", task.title), ("labels", " ".join(task.strings("labels")))]
    for name in ("description", "plan", "notes", "final_summary"):
        parts += [(name, line) for line in body.text(name).splitlines() if line.strip()]
    parts += [("acceptance_criteria", c.text) for c in body.checklist("acceptance_criteria")]
    parts += [("comments", line) for c in body.comments() for line in c.body.splitlines() if line.strip()]
    return parts


def _score(query: str, task: Task) -> tuple[float, str, str]:
    if task.id.lower() == query.strip().lower():
        return 100.0, "id", task.title
    best = (0.0, "", "")
    for where, line in _texts(task):
        # A title is short, so it is compared whole; a body line may hold the query among other words.
        scorer = fuzz.WRatio if where == "title" else fuzz.partial_ratio
        score = scorer(query, line, processor=default_process)
        if where != "title" and len(default_process(query)) > len(default_process(line)):
            score = min(score, fuzz.ratio(query, line, processor=default_process))
        if score > best[0]:
            best = (score, where, line.strip())
    return best


@toolset.tool(read_only=True, title="Search backlog tasks")
async def task_search(
    ctx: CallContext,
    query: Annotated[str, Field(min_length=1, max_length=500, description="Words to look for; typos are tolerated.")],
    status: Annotated[str | None, Field(description="Only tasks in this status.")] = None,
    label: Annotated[str | None, Field(description="Only tasks carrying this label.")] = None,
    limit: Annotated[int, Field(ge=1, le=100)] = 10,
    min_score: Annotated[float, Field(ge=0, le=100, description="Leave out matches scoring below this.")] = 60,
    include_completed: bool = True,
) -> SearchResults:
    """Fuzzy-search the backlog's tasks: id, title, labels, description, acceptance criteria, plan, notes,
    comments and final summary. Best matches first, each with the line that matched."""

    def search() -> SearchResults:
        project = Project.open(ctx)
        if status is not None:
            project.canonical_status(status)
        tasks = [
            task
            for task in project.load()
            if (include_completed or not task.completed_folder) and _matches(task, status, label, None)
        ]
        hits = []
        for task in tasks:
            score, where, snippet = _score(query, task)
            if score >= min_score and where:
                hits.append(
                    SearchHit(
                        id=task.id,
                        title=task.title,
                        status=task.status,
                        score=round(score, 1),
                        matched_in=where,
                        snippet=snippet[:200],
                        path=task.shown,
                    )
                )
        hits.sort(key=lambda hit: -hit.score)
        return SearchResults(query=query, hits=hits[:limit], searched=len(tasks))

    return await ctx.run_sync(search)
