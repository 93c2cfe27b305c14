"""Fixtures for the official conformance suite, plus the few the transport-parity tests need."""

from __future__ import annotations

import anyio

from tandem.core import CallContext, ToolError, Toolset

toolset = Toolset("conformance", description="Fixtures for the MCP conformance suite and Tandem's transport tests.")


@toolset.tool(read_only=True)
def test_simple_text() -> str:
    """Return a fixed text, for the conformance suite."""
    return "This is a simple text response for testing."


@toolset.tool(read_only=True)
async def test_tool_with_progress(ctx: CallContext) -> str:
    """Report progress 0, 50 and 100 of 100, then finish."""
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"Completed step {step} of 100")
        await anyio.sleep(0.05)
    return "Progress test completed"


@toolset.tool(read_only=True)
def test_error_handling() -> str:
    """Always fail with a tool error, for the conformance suite."""
    raise ToolError("This tool intentionally returns an error for testing")


@toolset.tool(read_only=True)
def add(a: int, b: int) -> str:
    """Add two integers; a tool whose arguments can be wrong, for the invalid-arguments tests."""
    return str(a + b)


@toolset.tool(read_only=True)
async def slow(seconds: float = 30.0) -> str:
    """Sleep for the given seconds, stopping when cancelled; for the cancellation tests."""
    await anyio.sleep(seconds)
    return f"slept {seconds}s"
