"""What the toolset tests share: an in-process Tandem with chosen settings behind a real MCP client, and calls that
assert the tool answered or refused."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcp import Client

from tandem.config import load_settings
from tandem.core import Registry
from tandem.server import TandemServer


@contextlib.asynccontextmanager
async def serving(workspace: Path, **settings: Any) -> AsyncIterator[Client]:
    """A client connected to Tandem serving ``workspace`` with ``settings`` (``toolsets=[...]``, tables, ...)."""
    loaded = load_settings(workspace, **settings)
    tandem = TandemServer(Registry.from_entry_points(loaded.toolsets), loaded)
    async with Client(tandem.server, mode="legacy") as client:
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    """The structured result of a successful call, or its text when it has none."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content if result.structured_content is not None else result.content[0].text


async def text(client: Client, tool: str, **arguments: Any) -> str:
    """The text (the summary) of a successful call."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.content[0].text


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    """The message of a call that must fail."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result
    return result.content[0].text


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Plain git, as a user runs it (the tests' own set-up and their controls)."""
    return subprocess.run(["git", *args], cwd=cwd, check=check, capture_output=True, text=True).stdout
