"""Structural search and rewrite through a real MCP client on a real tree."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import sysconfig
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.toolsets.calls import call, refused, serving

pytestmark = pytest.mark.anyio

APP = """import logging

def greet(name, punctuation="!"):
    print("hello", name)
    return f"hello {name}{punctuation}"


class Greeter:
    def run(self, names):
        for name in names:
            print(greet(name))
"""
WEB = """function add(a, b) { console.log(a, b); return a + b; }
const total = add(1, 2);
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP)
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "add.js").write_text(WEB)
    (tmp_path / "broken.py").write_text("def oops(:\n    print(1)\n")
    (tmp_path / ".gitignore").write_text("build/\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "gen.py").write_text("print('generated')\n")
    return tmp_path


@pytest.fixture
async def client(workspace: Path) -> AsyncIterator[Client]:
    async with serving(workspace, toolsets=["code"]) as connected:
        yield connected


async def test_pattern_search_with_metavariables(client: Client) -> None:
    found = await call(client, "ast_search", pattern="print($$$ARGS)", language="python")
    assert [(m["path"], m["line"], m["column"]) for m in found["matches"]] == [
        ("broken.py", 2, 5),
        ("src/app.py", 4, 5),
        ("src/app.py", 11, 13),
    ]
    assert found["matches"][1]["metavariables"] == {"$$$ARGS": ['"hello"', "name"]}
    single = await call(client, "ast_search", pattern="greet($NAME)", paths=["src"], context=1)
    (match,) = single["matches"]
    assert match["metavariables"] == {"$NAME": "name"} and match["before"] == ["        for name in names:"]


async def test_language_is_inferred_and_gitignore_respected(client: Client) -> None:
    found = await call(client, "ast_search", pattern="console.log($$$A)")
    assert [m["path"] for m in found["matches"]] == ["web/add.js"]
    generated = await call(client, "ast_search", pattern="print($A)", paths=["."])
    assert all(not m["path"].startswith("build/") for m in generated["matches"])


async def test_yaml_rules(client: Client) -> None:
    rule = """
rule:
  kind: call_expression
  inside:
    kind: return_statement
    stopBy: end
"""
    assert (await call(client, "ast_search", rule=rule, language="javascript"))["matches"] == []
    assert "ast-grep refused" in await refused(client, "ast_search", rule={"kind": "call"}, language="javascript")
    inside = """
rule:
  pattern: print($$$A)
  inside:
    kind: class_definition
    stopBy: end
"""
    found = await call(client, "ast_search", rule=inside, language="python")
    assert [m["line"] for m in found["matches"]] == [11]
    constrained = {
        "rule": {"pattern": "def $F($$$P): $$$B"},
        "constraints": {"F": {"regex": "^gr"}},
    }
    names = await call(client, "ast_search", rule=constrained, language="python")
    assert [m["metavariables"]["$F"] for m in names["matches"]] == ["greet"]


async def test_bad_queries_are_clear_errors(client: Client) -> None:
    assert "either 'pattern'" in await refused(client, "ast_search")
    assert "unknown language 'klingon'" in await refused(client, "ast_search", pattern="x", language="klingon")
    assert "not valid YAML" in await refused(client, "ast_search", rule="rule: [unclosed", language="python")
    assert "ast-grep refused" in await refused(client, "ast_search", rule={"rule": {"kindd": "x"}}, language="python")
    assert "outside the workspace" in await refused(client, "ast_search", pattern="x", paths=["../"])


async def test_rewrite_previews_then_applies_with_hashes(client: Client, workspace: Path) -> None:
    app = workspace / "src" / "app.py"
    before = app.read_text()
    preview = await call(
        client, "ast_rewrite", pattern="print($$$ARGS)", rewrite="logging.info($$$ARGS)", paths=["src"]
    )
    assert not preview["applied"] and app.read_text() == before
    assert preview["files"] == [
        {"path": "src/app.py", "replacements": 2, "sha256": hashlib.sha256(before.encode()).hexdigest()}
    ]
    assert '-    print("hello", name)\n+    logging.info("hello", name)' in preview["diff"]
    hashes = {f["path"]: f["sha256"] for f in preview["files"]}
    applied = await call(
        client,
        "ast_rewrite",
        pattern="print($$$ARGS)",
        rewrite="logging.info($$$ARGS)",
        paths=["src"],
        dry_run=False,
        expected_hashes=hashes,
    )
    assert applied["applied"] and app.read_text().count("logging.info(") == 2 and "print(" not in app.read_text()
    stale = await refused(
        client,
        "ast_rewrite",
        pattern="logging.info($A)",
        rewrite="print($A)",
        paths=["src"],
        dry_run=False,
        expected_hashes=hashes,
    )
    assert "changed since the preview" in stale


async def test_explain_and_languages(client: Client) -> None:
    tree = await call(client, "ast_explain", code="x = foo(1)\n", language="python")
    assert tree.splitlines()[:4] == [
        "module [1:1-2:1]",
        "  expression_statement [1:1-1:11]",
        "    assignment [1:1-1:11]",
        "      identifier [1:1-1:2] 'x'",
    ]
    languages = await call(client, "ast_languages")
    assert languages["languages"]["python"] == [".py", ".pyi"] and len(languages["languages"]) >= 25


@pytest.mark.parametrize(
    "pattern",
    [
        "json.loads($A)",
        "isinstance($A, $B)",
        "def $F(self): $$$B",
        "raise ValueError($$$A)",
        "$A.append($B)",
        "$A($$$B)",
    ],
)
async def test_search_agrees_with_the_ast_grep_cli(tmp_path: Path, pattern: str) -> None:
    # A real tree (some of the standard library) searched both ways: the same matches at the same places, so
    # skipping sources that lack a pattern's words loses nothing.

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for package in ("json", "email", "logging", "http"):
        shutil.copytree(stdlib / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    cli = Path(sys.executable).parent / "ast-grep"
    done = await anyio.run_process(
        [str(cli), "run", "--pattern", pattern, "--lang", "python", "--json=stream", "."], cwd=tmp_path
    )
    expected = set()
    for line in done.stdout.decode().splitlines():
        found = json.loads(line)
        start = found["range"]["start"]
        expected.add((found["file"], start["line"] + 1, start["column"] + 1))
    async with serving(tmp_path, toolsets=["code"]) as connected:
        result = await call(connected, "ast_search", pattern=pattern, language="python", max_results=10_000)
    got = {(m["path"], m["line"], m["column"]) for m in result["matches"]}
    assert len(expected) >= 2
    assert got == expected


async def test_a_large_search_runs_in_worker_processes_in_file_order(tmp_path: Path) -> None:
    # 700 files are more batches than a search parses in its own process: the answer must not depend on that.
    for i in range(700):
        (tmp_path / f"m{i:04d}.py").write_text(f"def f{i}():\n    return compute({i})\n\nunrelated = {i}\n")
    async with serving(tmp_path, toolsets=["code"]) as connected:
        every = await call(connected, "ast_search", pattern="compute($N)", max_results=10_000)
        first = await call(connected, "ast_search", pattern="compute($N)", max_results=450)
    assert every["files_searched"] == 700 and not every["truncated"]
    assert [m["metavariables"]["$N"] for m in every["matches"]] == [str(i) for i in range(700)]
    assert [m["path"] for m in first["matches"]] == [f"m{i:04d}.py" for i in range(450)] and first["truncated"]


async def test_each_answer_starts_with_a_summary(client: Client) -> None:
    search = await client.call_tool("ast_search", {"pattern": "print($$$ARGS)", "paths": ["src"]})
    preview = await client.call_tool("ast_rewrite", {"pattern": "greet($A)", "rewrite": "hello($A)"})
    languages = await client.call_tool("ast_languages", {})
    assert search.content[0].text == "2 match(es) in 1 file(s) (1 searched)"
    assert preview.content[0].text.startswith("1 replacement(s) in 1 file(s) previewed (dry run;")
    assert languages.content[0].text.startswith("27 languages: bash, c, cpp,")
