"""The registry: schemas from type hints, structured output, annotations, resources, prompts, entry points."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field

from tandem.config import load_settings
from tandem.core import CallContext, ConfigError, Image, Registry, ToolError, Toolset
from tandem.core.registry import discover_toolsets
from tandem.server import TandemServer

pytestmark = pytest.mark.anyio


class Count(BaseModel):
    word: str
    count: int


class Tally(BaseModel):
    words: int

    def summary(self) -> str:
        return f"{self.words} words"


def make_toolset() -> Toolset:
    ts = Toolset("sample", description="A toolset for the registry tests.")

    @ts.tool(read_only=True)
    def count_words(text: Annotated[str, Field(description="The text to count in.")], word: str = "the") -> Count:
        """Count how often a word occurs in a text."""
        return Count(word=word, count=text.split().count(word))

    @ts.tool(read_only=True)
    def tally(text: str) -> Tally:
        """Count the words of a text, with a summary line."""
        return Tally(words=len(text.split()))

    @ts.tool(destructive=True, idempotent=False, open_world=True)
    async def remember(key: str, value: str, ctx: CallContext) -> str:
        """Keep a value for this session."""
        ctx.state[key] = value
        return f"{key} kept in session {ctx.session_id is not None}"

    @ts.tool()
    def recall(key: str, ctx: CallContext) -> str:
        """Give back a value kept earlier in this session."""
        if key not in ctx.state:
            raise ToolError(f"nothing kept under {key!r}; call remember first")
        return ctx.state[key]

    @ts.tool()
    def picture() -> Image:
        """Return a tiny image."""
        return Image(b"\x89PNG\r\n", "image/png")

    @ts.tool()
    def huge() -> str:
        """Return far more text than the output cap."""
        return "y" * 50_000

    @ts.tool()
    def broken() -> str:
        """Fail with an unexpected exception."""
        raise RuntimeError("/secret/host/path exploded")

    @ts.resource("sample://readme", description="A fixed text.")
    def readme() -> str:
        return "hello"

    @ts.resource("sample://items/{item_id}", mime_type="application/octet-stream")
    def item(item_id: int) -> bytes:
        return bytes([item_id])

    @ts.prompt(description="Ask for a review of one file.")
    def review(path: str, focus: str = "bugs") -> str:
        return f"Review {path} for {focus}."

    return ts


@pytest.fixture
def tandem(tmp_path) -> TandemServer:  # type: ignore[no-untyped-def]
    settings = load_settings(tmp_path, log_requests=False, max_output_chars=1000)
    return TandemServer(Registry([make_toolset()]), settings)


async def test_schemas_annotations_and_structured_output(tandem: TandemServer) -> None:
    async with Client(tandem.server, mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("count_words", {"text": "the cat and the hat"})
    schema = tools["count_words"].input_schema
    assert schema["required"] == ["text"]
    assert schema["properties"]["text"]["description"] == "The text to count in."
    assert schema["properties"]["word"]["default"] == "the"
    assert tools["count_words"].description == "Count how often a word occurs in a text."
    assert tools["count_words"].output_schema is not None
    assert set(tools["count_words"].output_schema["properties"]) == {"word", "count"}
    assert tools["count_words"].annotations.read_only_hint is True
    assert tools["count_words"].annotations.destructive_hint is False
    assert tools["remember"].annotations.open_world_hint is True
    assert tools["remember"].annotations.destructive_hint is True
    assert "ctx" not in tools["remember"].input_schema["properties"]
    assert result.structured_content == {"word": "the", "count": 2}
    assert [c.text for c in result.content] == ['{"word": "the", "count": 2}']


async def test_a_model_with_a_summary_answers_it_first(tandem: TandemServer) -> None:
    async with Client(tandem.server, mode="legacy") as client:
        result = await client.call_tool("tally", {"text": "one two three"})
    assert [c.text for c in result.content] == ["3 words", '{"words": 3}']
    assert result.structured_content == {"words": 3}


async def test_session_state_lives_as_long_as_the_connection(tandem: TandemServer) -> None:
    async with Client(tandem.server, mode="legacy") as client:
        await client.call_tool("remember", {"key": "k", "value": "v"})
        assert (await client.call_tool("recall", {"key": "k"})).content[0].text == "v"
    async with Client(tandem.server, mode="legacy") as client:
        forgotten = await client.call_tool("recall", {"key": "k"})
    assert forgotten.is_error
    assert "call remember first" in forgotten.content[0].text


async def test_content_caps_and_unexpected_failures(tandem: TandemServer) -> None:
    async with Client(tandem.server, mode="legacy") as client:
        picture = await client.call_tool("picture", {})
        huge = await client.call_tool("huge", {})
        broken = await client.call_tool("broken", {})
        with pytest.raises(MCPError) as extra:
            await client.call_tool("count_words", {"text": "a", "bogus": 1})
    assert picture.content[0].type == "image" and picture.content[0].mime_type == "image/png"
    assert len(huge.content[0].text) < 1200
    assert "[truncated: showing 1,000 of 50,000 characters" in huge.content[0].text
    assert broken.is_error
    assert "failed unexpectedly" in broken.content[0].text
    assert re.search(r"correlation id [0-9a-f]{16}\)", broken.content[0].text)
    assert "/secret/host/path" not in broken.content[0].text
    assert extra.value.error.code == -32602 and "bogus" in extra.value.error.message


async def test_resources_templates_and_prompts(tandem: TandemServer) -> None:
    async with Client(tandem.server, mode="legacy") as client:
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
        text = await client.read_resource("sample://readme")
        blob = await client.read_resource("sample://items/7")
        with pytest.raises(MCPError) as missing:
            await client.read_resource("sample://nothing")
        prompts = (await client.list_prompts()).prompts
        rendered = await client.get_prompt("review", {"path": "src/app.py"})
        with pytest.raises(MCPError) as bad_prompt:
            await client.get_prompt("review", {})
    assert [str(r.uri) for r in resources] == ["sample://readme"]
    assert [t.uri_template for t in templates] == ["sample://items/{item_id}"]
    assert text.contents[0].text == "hello"
    assert blob.contents[0].blob == "Bw=="
    assert missing.value.error.code == -32002
    assert prompts[0].name == "review"
    assert [(a.name, a.required) for a in prompts[0].arguments] == [("path", True), ("focus", False)]
    assert rendered.messages[0].content.text == "Review src/app.py for bugs."
    assert bad_prompt.value.error.code == -32602


def test_registration_mistakes_are_caught() -> None:
    ts = Toolset("dupes")

    @ts.tool()
    def one() -> str:
        return "1"

    with pytest.raises(ValueError, match="already has a tool named 'one'"):
        ts.tool(name="one")(lambda: "again")
    with pytest.raises(TypeError, match=r"\*args"):
        ts.tool(name="star")(lambda *a: "x")
    with pytest.raises(ValueError, match="variables and parameters differ"):
        ts.resource("x://{a}")(lambda b: "x")
    other = Toolset("other")
    other.tool(name="one")(lambda: "clash")
    with pytest.raises(ValueError, match="redefines tool"):
        Registry([ts, other])


def test_builtin_toolsets_come_through_entry_points() -> None:
    found = discover_toolsets()
    assert {"server", "conformance"} <= set(found)
    default = Registry.from_entry_points()
    assert "server" in default.toolsets and "conformance" not in default.toolsets
    assert set(Registry.from_entry_points(["conformance"]).toolsets) == {"conformance"}
    assert "server" not in Registry.from_entry_points(None, disabled=["server"]).toolsets
    with pytest.raises(ConfigError, match="unknown toolset"):
        Registry.from_entry_points(["nope"])


async def test_before_and_after_hooks_of_another_toolset_see_every_call(tmp_path):
    """A toolset's before hook refuses another toolset's tool; its after hook sees the result; a failing after
    hook leaves the result alone."""
    served = Toolset("served")

    @served.tool(read_only=True)
    def echo(word: str) -> str:
        return word

    seen: list[tuple[str, str, str]] = []
    guard = Toolset("guard")

    @guard.before("echo")
    async def refuse_secret(tool, arguments, ctx):
        if arguments.get("word") == "secret":
            raise ToolError("echo refused: the word is secret")

    @guard.after("echo")
    def record(tool, arguments, result, ctx):
        seen.append((tool.name, arguments["word"], result))

    @guard.after("echo")
    def broken(tool, arguments, result, ctx):
        raise RuntimeError("observer bug")

    registry = Registry([served, guard])
    settings = load_settings(tmp_path)
    tandem = TandemServer(registry, settings)
    async with Client(tandem.server, mode="legacy") as client:
        ok = await client.call_tool("echo", {"word": "hello"})
        assert not ok.is_error and ok.content[0].text == "hello"
        no = await client.call_tool("echo", {"word": "secret"})
        assert no.is_error and "the word is secret" in no.content[0].text
    assert seen == [("echo", "hello", "hello")]


async def test_an_after_hook_that_raises_tool_error_answers_the_call_with_it(tmp_path):
    """A guard that finds, once the call has run, that it did what it must not (and has undone it) answers with its
    error; the other after hooks still run, and an observer's own failure still leaves the result alone."""
    served = Toolset("served")

    @served.tool(read_only=True)
    def echo(word: str) -> str:
        return word

    seen: list[str] = []
    guard = Toolset("guard")

    @guard.after("echo")
    def undo_secret(tool, arguments, result, ctx):
        if arguments.get("word") == "secret":
            raise ToolError("echo undone: the word was secret")

    @guard.after("echo")
    def broken(tool, arguments, result, ctx):
        raise RuntimeError("observer bug")

    @guard.after("echo")
    def record(tool, arguments, result, ctx):
        seen.append(arguments["word"])

    tandem = TandemServer(Registry([served, guard]), load_settings(tmp_path))
    async with Client(tandem.server, mode="legacy") as client:
        ok = await client.call_tool("echo", {"word": "hello"})
        undone = await client.call_tool("echo", {"word": "secret"})
    assert not ok.is_error and ok.content[0].text == "hello"
    assert undone.is_error and "the word was secret" in undone.content[0].text
    assert seen == ["hello", "secret"]


async def test_a_star_hook_matches_the_tool_under_any_namespace(tmp_path):
    served = Toolset("served")

    @served.tool("coder.commit")
    def namespaced() -> str:
        return "done"

    @served.tool("commit_notes")
    def other() -> str:
        return "notes"

    guard = Toolset("guard")

    @guard.before("*.commit")
    def refuse(tool, arguments, ctx):
        raise ToolError(f"{tool.name} refused")

    tandem = TandemServer(Registry([served, guard]), load_settings(tmp_path))
    async with Client(tandem.server, mode="legacy") as client:
        no = await client.call_tool("coder.commit", {})
        ok = await client.call_tool("commit_notes", {})
    assert no.is_error and no.content[0].text == "coder.commit refused"
    assert not ok.is_error and ok.content[0].text == "notes"
