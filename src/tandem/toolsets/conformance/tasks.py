"""Task fixtures (the io.modelcontextprotocol/tasks extension): tools a client polls instead of waiting on."""

from __future__ import annotations

import anyio

from tandem.core import CallContext, InputRequired, ToolError
from tandem.toolsets.conformance.toolset import accepted, toolset

CONFIRM_SCHEMA = {"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


@toolset.tool(read_only=True)
def greet(name: str) -> str:
    """Greet someone at once; never a task."""
    return f"Hello, {name}!"


@toolset.tool(read_only=True, task_support="optional")
async def slow_compute(seconds: float, ctx: CallContext, label: str = "") -> str:
    """Sleep for the given seconds as a task, then report; cancelling the task stops it."""
    if seconds > 0:
        await ctx.run_as_task()
        await ctx.report_progress(0, seconds, "started")
        await anyio.sleep(seconds)
        await ctx.report_progress(seconds, seconds, "done")
    return f"computed {label or 'result'} after {seconds}s"


@toolset.tool(read_only=True, task_support="required")
async def failing_job(ctx: CallContext) -> str:
    """Run as a task for about a second, then fail with a tool error."""
    await ctx.run_as_task()
    await anyio.sleep(1)
    raise ToolError("failing_job failed, as it always does")


@toolset.tool(read_only=True, task_support="optional")
async def protocol_error_job(ctx: CallContext) -> str:
    """Run as a task and break with an internal error (a protocol-level failure)."""
    await ctx.run_as_task()
    raise RuntimeError("protocol_error_job broke on purpose")


@toolset.tool(task_support="optional")
async def confirm_delete(filename: str, ctx: CallContext) -> str | InputRequired:
    """As a task, ask the user to confirm deleting a file, then report what they chose (nothing is deleted)."""
    await ctx.run_as_task()
    answer = accepted(ctx, "confirm")
    if answer is None:
        return InputRequired({"confirm": InputRequired.elicitation(f"Delete {filename}?", CONFIRM_SCHEMA)})
    return f"{filename}: {'deleted' if answer.get('confirm') else 'kept'}"


@toolset.tool(read_only=True, task_support="optional")
async def multi_input(ctx: CallContext) -> str | InputRequired:
    """As a task, ask two questions at once and report both answers."""
    await ctx.run_as_task()
    first, second = accepted(ctx, "first"), accepted(ctx, "second")
    if first is None or second is None:
        return InputRequired(
            {
                "first": InputRequired.elicitation("First question?", CONFIRM_SCHEMA),
                "second": InputRequired.elicitation("Second question?", CONFIRM_SCHEMA),
            }
        )
    return f"first={first}, second={second}"


@toolset.tool(read_only=True, task_support="required")
async def test_tool_with_task(ctx: CallContext) -> str | InputRequired:
    """Ask the user's name (a multi-round-trip input), then greet them from a task."""
    answer = accepted(ctx, "user_name")
    if answer is None:
        return InputRequired({"user_name": InputRequired.elicitation("What is your name?", NAME_SCHEMA)})
    await ctx.run_as_task()
    return f"Hello from a task, {answer.get('name')}!"
