"""Tasks (the ``io.modelcontextprotocol/tasks`` extension, SEP-2663): a tool call the client polls, not waits on.

A task runs in the background of the server process. The client polls ``tasks/get`` for its status, answers its
input requests with ``tasks/update`` and stops it with ``tasks/cancel``; a finished task keeps its result for its
time-to-live. The store is in memory: a task does not outlive the process that runs it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import anyio

logger = logging.getLogger("tandem.tasks")

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
TTL_MS = 60 * 60 * 1000
POLL_INTERVAL_MS = 500

Status = Literal["working", "input_required", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Task:
    id: str
    status: Status = "working"
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    ttl_ms: int = TTL_MS
    poll_interval_ms: int = POLL_INTERVAL_MS
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = None
    _answered: anyio.Event = field(default_factory=anyio.Event)
    _responses: dict[str, Any] | None = None
    _runner: asyncio.Task[None] | None = None

    def _set(self, status: Status) -> None:
        self.status = status
        self.updated = time.time()

    @property
    def expired(self) -> bool:
        return self.status in TERMINAL and (time.time() - self.updated) * 1000 > self.ttl_ms

    def envelope(self) -> dict[str, Any]:
        """The task's identity and state: what a tools/call that created it answers (with ``resultType``)."""
        return {
            "taskId": self.id,
            "status": self.status,
            "createdAt": _iso(self.created),
            "lastUpdatedAt": _iso(self.updated),
            "ttlMs": self.ttl_ms,
            "pollIntervalMs": self.poll_interval_ms,
        }

    def detailed(self) -> dict[str, Any]:
        """What ``tasks/get`` answers: the envelope, plus the result, error or input requests of its status."""
        out = self.envelope()
        if self.status == "completed" and self.result is not None:
            out["result"] = self.result
        elif self.status == "failed" and self.error is not None:
            out["error"] = self.error
        elif self.status == "input_required" and self.input_requests is not None:
            out["inputRequests"] = self.input_requests
        return out

    async def ask(self, requests: dict[str, Any]) -> dict[str, Any]:
        """Park the task on input requests until ``tasks/update`` has answered every one; returns the answers."""
        self._answered = anyio.Event()
        self._responses = {}
        self.input_requests = dict(requests)
        self._set("input_required")
        await self._answered.wait()
        self.input_requests = None
        self._set("working")
        return self._responses or {}

    def answer(self, responses: dict[str, Any]) -> None:
        """Take answers to some or all pending requests; the task resumes once none is left pending."""
        if self.status != "input_required" or self.input_requests is None:
            return
        for key, response in responses.items():
            if key in self.input_requests:
                del self.input_requests[key]
                assert self._responses is not None
                self._responses[key] = response
        self.updated = time.time()
        if not self.input_requests:
            self._answered.set()

    def complete(self, result: dict[str, Any]) -> None:
        self.result = result
        self._set("completed")

    def fail(self, error: dict[str, Any]) -> None:
        self.error = error
        self._set("failed")


class TaskStore:
    """Every task of this server process, by id."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def start(self, body: Callable[[Task], Awaitable[None]]) -> Task:
        """Run ``body`` in the background for a new task, not yet visible; ``publish`` makes it so."""
        self._forget_expired()
        task = Task(id=uuid.uuid4().hex)
        # A bare asyncio task: it must outlive the request that created it, whatever transport carried that.
        task._runner = asyncio.get_running_loop().create_task(self._run(task, body))
        return task

    def publish(self, task: Task) -> None:
        """From now on ``tasks/get`` finds the task."""
        self._tasks[task.id] = task

    async def _run(self, task: Task, body: Callable[[Task], Awaitable[None]]) -> None:
        try:
            await body(task)
        except asyncio.CancelledError:
            task._set("cancelled")
            raise
        except Exception:
            logger.exception("task %s failed", task.id)
            task.fail({"code": -32603, "message": "Internal error while running the task"})
        if task.status not in TERMINAL:
            task.fail({"code": -32603, "message": "The task ended without a result"})

    def get(self, task_id: str) -> Task | None:
        task = self._tasks.get(task_id)
        if task is not None and task.expired:
            del self._tasks[task_id]
            return None
        return task

    def cancel(self, task: Task) -> None:
        """Stop a running task; a finished one stays as it is (cancelling is idempotent)."""
        if task.status in TERMINAL:
            return
        task._set("cancelled")
        if task._runner is not None:
            task._runner.cancel()

    def _forget_expired(self) -> None:
        for task_id in [t.id for t in self._tasks.values() if t.expired]:
            del self._tasks[task_id]

    def __len__(self) -> int:
        return len(self._tasks)
