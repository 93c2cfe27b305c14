"""A Backlog.md project in the workspace: where it lives, its ``config.yml``, its task files, and the rules the CLI
follows for ids, file names, statuses and priorities.

Every path is reached through the call context's confinement; a task file that a symlink leads out of the
workspace is refused like any other path.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tandem.core import CallContext, ToolError, text_files, write_atomic
from tandem.toolsets.backlog import frontmatter
from tandem.toolsets.backlog.sections import Body

BACKLOG_DIRS = ("backlog", ".backlog")
"""Where the CLI looks for a project, in its order (``backlog init --backlog-dir`` offers these two)."""
TASKS, COMPLETED = "tasks", "completed"
DEFAULT_STATUSES = ["To Do", "In Progress", "Done"]
DEFAULT_PRIORITIES = ["high", "medium", "low"]
ORDINAL_STEP = 1000
MAX_TASK_FILE_BYTES = 2 * 1024 * 1024
# Bounded so an id's numbers always convert (Python refuses int() of more than 4,300 digits), ASCII digits only.
_ID_BODY = re.compile(r"^[0-9]{1,18}(?:\.[0-9]{1,18}){0,15}\Z")
_SHOWN_ID_CHARS = 40
# Backlog.md's own sanitizeFilename: path characters become '-', noisy punctuation goes, whitespace becomes '-'.
_UNSAFE = re.compile(r'[<>:"/\\|?*]')
_NOISY = re.compile(r"['(),!@#$%^&+=\[\]{};]")


def now() -> str:
    """A timestamp as the CLI writes ``created_date`` / ``updated_date``: UTC, ``YYYY-MM-DD HH:MM``."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M")


def file_title(title: str) -> str:
    """The title part of a task file name, exactly as ``backlog task create`` names the file."""
    name = _NOISY.sub("", _UNSAFE.sub("-", title))
    return re.sub(r"-+", "-", re.sub(r"\s+", "-", name)).strip("-")


@dataclass
class Task:
    """One task file: where it is, its frontmatter fields in file order, and its body."""

    path: Path
    shown: str
    fields: dict[str, Any]
    body: Body
    completed_folder: bool

    @property
    def id(self) -> str:
        return str(self.fields.get("id", ""))

    @property
    def title(self) -> str:
        return str(self.fields.get("title", ""))

    @property
    def status(self) -> str:
        return str(self.fields.get("status", ""))

    def strings(self, name: str) -> list[str]:
        """A list field (assignee, labels, dependencies, ...); a lone string counts as a one-item list."""
        value = self.fields.get(name)
        if isinstance(value, list):
            return [str(item) for item in value]
        return [str(value)] if value not in (None, "") else []

    def text(self, name: str) -> str | None:
        value = self.fields.get(name)
        return None if value in (None, "") else str(value)

    def render(self) -> str:
        """The file's new content: fields in the CLI's order (others kept after them), then the body."""
        fields = dict(self.fields)
        fields["assignee"] = self.strings("assignee")
        ordered: dict[str, Any] = {}
        for name in _FIELD_ORDER:
            value = fields.pop(name, None)
            if name in _ALWAYS:
                ordered[name] = value if value is not None else ([] if name in _LISTS else "")
            elif value not in (None, "", []):
                ordered[name] = value
        ordered.update(fields)
        return frontmatter.render(ordered, self.body.render())


_FIELD_ORDER = [
    "id", "title", "status", "assignee", "reporter", "created_date", "updated_date", "due_date", "labels",
    "milestone", "dependencies", "references", "documentation", "modified_files", "parent_task_id", "subtasks",
    "priority", "type", "project", "ordinal", "onStatusChange",
]  # fmt: skip
_ALWAYS = {"id", "title", "status", "assignee", "created_date", "labels", "dependencies"}
_LISTS = {"assignee", "labels", "dependencies"}


@dataclass
class Project:
    """The backlog directory (confined, real) and its configuration."""

    ctx: CallContext
    root: Path
    shown: str
    config: dict[str, Any]
    skipped: list[str] = field(default_factory=list)
    """Task files that could not be read, with why; listings say so instead of failing."""

    @classmethod
    def open(cls, ctx: CallContext) -> Project:
        """The workspace's Backlog.md project; a tool error saying to run ``backlog init`` when there is none."""
        for name in BACKLOG_DIRS:
            root = ctx.path(name)
            for config_name in ("config.yml", "config.yaml"):
                config_path = root / config_name
                if config_path.is_file():
                    config = _read_config(ctx, ctx.path(f"{name}/{config_name}"))
                    return cls(ctx, root, ctx.display(root), config)
        raise ToolError(
            "this workspace has no Backlog.md project (no backlog/config.yml): run 'backlog init' in the workspace "
            "root (npm package backlog.md) to create one"
        )

    @property
    def statuses(self) -> list[str]:
        configured = self.config.get("statuses")
        if isinstance(configured, list) and configured:
            return [str(s).strip() for s in configured if str(s).strip()]
        return list(DEFAULT_STATUSES)

    @property
    def default_status(self) -> str:
        configured = self.config.get("default_status")
        return str(configured).strip() if configured else self.statuses[0]

    @property
    def terminal_status(self) -> str:
        """The status a finished task gets: the last configured one, as the CLI's ``task complete`` decides."""
        return self.statuses[-1]

    @property
    def priorities(self) -> list[str]:
        configured = self.config.get("priorities")
        if isinstance(configured, list) and configured:
            return [" ".join(str(p).split()).lower() for p in configured if str(p).strip()]
        return list(DEFAULT_PRIORITIES)

    @property
    def prefix(self) -> str:
        prefix = str(self.config.get("task_prefix") or "task").strip().strip("'\"")
        return prefix if prefix.isalpha() else "task"

    def list_of(self, key: str) -> list[str]:
        value = self.config.get(key)
        if isinstance(value, list):
            return [str(item).strip() for item in value if str(item).strip()]
        return [str(value).strip()] if isinstance(value, str) and value.strip() else []

    def canonical_status(self, status: str) -> str:
        """``status`` as configured (matched case-insensitively); a tool error naming the choices otherwise."""
        for known in self.statuses:
            if known.lower() == status.strip().lower():
                return known
        raise ToolError(f"unknown status {status!r}: this backlog's statuses are {', '.join(self.statuses)}")

    def canonical_priority(self, priority: str) -> str:
        normalized = " ".join(priority.split()).lower()
        if normalized not in self.priorities:
            raise ToolError(f"unknown priority {priority!r}: use one of {', '.join(self.priorities)}")
        return normalized

    def id_key(self, task_id: str) -> tuple[int, ...]:
        """The numbers an id stands for (``TASK-7.2``, ``task-7.2`` and ``7.2`` are the same task); refuses
        anything that is not an id, so an id can never become a path."""
        text = task_id.strip()
        head, dash, body = text.rpartition("-")
        if (dash and head.lower() != self.prefix.lower()) or not _ID_BODY.match(body):
            raise ToolError(
                f"{_shown_id(task_id)!r} is not a task id: give one like {self.prefix.upper()}-1 (or just 1)"
            )
        return tuple(int(part) for part in body.split("."))

    def load(self) -> list[Task]:
        """Every readable task in ``tasks/`` and ``completed/``, ordered by id."""
        self.skipped = []
        tasks = [task for folder in (TASKS, COMPLETED) for task in self._folder(folder)]
        return sorted(tasks, key=lambda task: self._sort_key(task.id))

    def find(self, task_id: str, tasks: list[Task] | None = None) -> Task:
        wanted = self.id_key(task_id)
        for task in tasks if tasks is not None else self.load():
            if self._key_or_none(task.id) == wanted:
                return task
        unreadable = (
            f" ({len(self.skipped)} task files could not be read: {self.skipped[0]} ...)" if self.skipped else ""
        )
        raise ToolError(
            f"no task {task_id!r} in {self.shown}/tasks or {self.shown}/completed; list them with read_backlog"
            + unreadable
        )

    def next_id(self, tasks: list[Task], parent: Task | None) -> str:
        """The id ``backlog task create`` would give: one past the highest top-level number (or, under a parent,
        the highest subtask number), over active and completed tasks, zero-padded as configured."""
        keys = [key for key in (self._key_or_none(task.id) for task in tasks) if key is not None]
        padding = _int(self.config.get("zero_padded_ids"))
        if parent is None:
            number = max((key[0] for key in keys if len(key) == 1), default=0) + 1
            return f"{self.prefix.upper()}-{str(number).zfill(padding) if padding > 0 else number}"
        base = self.id_key(parent.id)
        number = max((key[len(base)] for key in keys if len(key) > len(base) and key[: len(base)] == base), default=0)
        return f"{parent.id.upper()}.{str(number + 1).zfill(2) if padding > 0 else number + 1}"

    def next_ordinal(self, tasks: list[Task]) -> int | float | None:
        """The CLI's ordinal for a new task: past the highest active one; the first task of a backlog gets one
        step, and a backlog whose tasks have none gives none."""
        active = [task for task in tasks if not task.completed_folder]
        ordinals = [value for value in (_number(task.fields.get("ordinal")) for task in active) if value is not None]
        if not ordinals:
            return ORDINAL_STEP if not active else None
        following = max(ordinals) + ORDINAL_STEP
        return int(following) if following.is_integer() else following

    def new_task_path(self, task_id: str, title: str) -> tuple[Path, str]:
        name = f"{task_id.lower()} - {file_title(title)}.md"
        if len(name.encode()) > 255:
            raise ToolError(f"the title is too long for a file name ({len(name.encode())} bytes, 255 at most)")
        shown = f"{self.shown}/{TASKS}/{name}"
        return self.ctx.path(shown), shown

    def save(self, task: Task) -> None:
        write_atomic(self.ctx.workspace, task.path, task.render().encode("utf-8"), create_dirs=True)

    def _folder(self, folder: str) -> list[Task]:
        directory = self.root / folder
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ToolError(f"{self.shown}/{folder} cannot be read: {exc.strerror}") from None
        tasks = []
        for entry in entries:
            if not entry.name.endswith(".md") or not entry.name.lower().startswith(self.prefix.lower() + "-"):
                continue
            shown = f"{self.shown}/{folder}/{entry.name}"
            try:
                path = self.ctx.path(shown)
                if not stat.S_ISREG(path.stat().st_mode):
                    continue
                tasks.append(self.read(path, shown, folder == COMPLETED))
            except (ToolError, OSError, frontmatter.FrontmatterError) as exc:
                self.skipped.append(f"{shown}: {exc}")
        return tasks

    def read(self, path: Path, shown: str, completed: bool) -> Task:
        content = text_files.read_text(self.ctx.workspace, path, MAX_TASK_FILE_BYTES).text
        fields, body = frontmatter.split(content)
        if not fields.get("id"):
            name_id = path.name.split(" ", 1)[0]
            fields = {"id": name_id.upper(), **fields}
        if self._key_or_none(str(fields["id"])) is None:
            # No tool could name this task, so it is listed with what is wrong rather than as a task.
            raise frontmatter.FrontmatterError(f"its id {_shown_id(str(fields['id']))!r} is not a task id like TASK-1")
        return Task(path, shown, fields, Body.parse(body), completed)

    def _key_or_none(self, task_id: str) -> tuple[int, ...] | None:
        try:
            return self.id_key(task_id)
        except ToolError:
            return None

    def _sort_key(self, task_id: str) -> tuple[int, tuple[int, ...], str]:
        key = self._key_or_none(task_id)
        return (0, key, "") if key is not None else (1, (), task_id)


def _shown_id(task_id: str) -> str:
    """An id as an error message quotes it: cut short, since a file or a caller may hand over thousands of digits."""
    return task_id if len(task_id) <= _SHOWN_ID_CHARS else task_id[:_SHOWN_ID_CHARS] + "…"


def _read_config(ctx: CallContext, path: Path) -> dict[str, Any]:
    text = text_files.read_text(ctx.workspace, path, MAX_TASK_FILE_BYTES).text
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ToolError(f"{ctx.display(path)} is not valid YAML ({str(exc).splitlines()[0]}); fix it first") from None
    if not isinstance(loaded, dict):
        raise ToolError(f"{ctx.display(path)} is not a mapping of settings; run 'backlog init' to recreate it")
    return loaded


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
