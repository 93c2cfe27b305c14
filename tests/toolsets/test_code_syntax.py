"""validate_syntax through a real MCP client: real parsers (Python's compiler, json, PyYAML, tomllib, tree-sitter)
on real files, and a worker process that dies without taking the server with it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tandem.core import ToolError, worker_processes
from tests.toolsets.calls import serving

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with serving(tmp_path, toolsets=["code"]) as connected:
        yield connected


async def call(client: Client, **arguments: Any) -> Any:
    result = await client.call_tool("validate_syntax", arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def refused(client: Client, **arguments: Any) -> str:
    result = await client.call_tool("validate_syntax", arguments)
    assert result.is_error, result
    return result.content[0].text


@pytest.mark.parametrize(
    ("name", "good", "bad", "checker", "where"),
    [
        ("a.py", "def f(x):\n    return x\n", "def f(x:\n    return x\n", "python-compile", (1, 6)),
        ("a.js", "const f = (a) => a + 1;\n", "const f = (a => a + 1;\n", "tree-sitter", None),
        ("a.ts", "let n: number = 1;\n", "let n: number = ;\n", "tree-sitter", None),
        ("a.rs", "fn main() { let x = 1; }\n", "fn main() { let x = 1 }\n", "tree-sitter", (1, 22)),
        ("a.go", "package main\n\nfunc main() {}\n", "package main\n\nfunc main( {}\n", "tree-sitter", None),
        ("a.c", "int main(void) { return 0; }\n", "int main(void) { return 0 }\n", "tree-sitter", None),
        ("a.json", '{"a": [1, 2]}\n', '{"a": [1, 2,]}\n', "json", (1, 13)),
        ("a.yaml", "a:\n  - 1\n  - 2\n", "a: [1, 2\nb: 3\n", "yaml", None),
        ("a.toml", 'name = "x"\n[table]\nk = 1\n', 'name = "x"\n[table\nk = 1\n', "toml", (2, 7)),
    ],
)
async def test_valid_and_invalid_files(
    client: Client,
    tmp_path: Path,
    name: str,
    good: str,
    bad: str,
    checker: str,
    where: tuple[int, int] | None,
) -> None:
    (tmp_path / "good").mkdir(exist_ok=True)
    (tmp_path / "good" / name).write_text(good)
    (tmp_path / name).write_text(bad)
    ok = await call(client, path=f"good/{name}")
    assert ok["valid"] and ok["errors"] == [] and ok["checker"] == checker
    wrong = await call(client, path=name)
    assert not wrong["valid"] and wrong["checker"] == checker and wrong["errors"]
    assert wrong["path"] == name
    if where is not None:
        assert (wrong["errors"][0]["line"], wrong["errors"][0]["column"]) == where


async def test_content_mode_and_messages(client: Client, tmp_path: Path) -> None:
    missing = await client.call_tool("validate_syntax", {"content": "fn main() { let x = 1 }", "language": "rust"})
    assert missing.structured_content["errors"][0]["message"] == "missing ';'"
    assert missing.content[0].text == "content: 1 syntax error(s) (tree-sitter); first at 1:22: missing ';'"
    python = await call(client, content="print('ok')\n", language="python")
    assert python["valid"] and python["language"] == "python"
    # compiling is not running: this would create a file if it were executed
    marker = tmp_path / "ran"
    harmless = await call(client, content=f"open({str(marker)!r}, 'w')\n", language="python")
    assert harmless["valid"] and not marker.exists()


async def test_bad_requests_are_clear_errors(client: Client, tmp_path: Path) -> None:
    (tmp_path / "notes.weird").write_text("x")
    (tmp_path / "blob.py").write_bytes(b"\x00\x01\x02\xff" * 100)
    assert "either 'path'" in await refused(client)
    assert "give 'language'" in await refused(client, content="x = 1")
    assert "unknown language 'klingon'" in await refused(client, content="x", language="klingon")
    assert "cannot tell the language" in await refused(client, path="notes.weird")
    assert "outside the workspace" in await refused(client, path="../etc/passwd")
    assert "outside the workspace" in await refused(client, path="/etc/passwd")
    assert "binary" in await refused(client, path="blob.py")


async def test_a_dead_worker_is_an_error_and_the_server_goes_on(client: Client) -> None:
    with pytest.raises(ToolError, match="worker process died"):
        await worker_processes.result(worker_processes.submit(os.abort))
    after = await call(client, content="x = (1,\n", language="python")
    assert not after["valid"]
