"""Tool fixtures: content types, progress, logging, errors, sampling and elicitation, schemas, headers."""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio
from pydantic import Field

from tandem.core import Audio, CallContext, EmbeddedResource, Image, MissingCapability, Text, ToolError
from tandem.toolsets.conformance.toolset import PNG, WAV, toolset


@toolset.tool(read_only=True)
def test_simple_text() -> str:
    """Return a fixed text."""
    return "This is a simple text response for testing."


@toolset.tool(read_only=True)
def test_image_content() -> Image:
    """Return a 1x1 PNG image."""
    return Image(PNG, "image/png")


@toolset.tool(read_only=True)
def test_audio_content() -> Audio:
    """Return a minimal WAV clip."""
    return Audio(WAV, "audio/wav")


@toolset.tool(read_only=True)
def test_embedded_resource() -> EmbeddedResource:
    """Return an embedded text resource."""
    return EmbeddedResource("test://embedded-resource", "text/plain", text="This is an embedded resource content.")


@toolset.tool(read_only=True)
def test_multiple_content_types() -> list[Text | Image | EmbeddedResource]:
    """Return text, an image and an embedded resource together."""
    return [
        Text("Multiple content types test:"),
        Image(PNG, "image/png"),
        EmbeddedResource(
            "test://mixed-content-resource", "application/json", text=json.dumps({"test": "data", "value": 123})
        ),
    ]


@toolset.tool(read_only=True)
def test_error_handling() -> str:
    """Always fail with a tool error."""
    raise ToolError("This tool intentionally returns an error for testing")


@toolset.tool(read_only=True)
async def test_tool_with_progress(ctx: CallContext) -> str:
    """Report progress 0, 50 and 100 of 100, then finish."""
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"Completed step {step} of 100")
        if step < 100:
            await anyio.sleep(0.05)
    return "Progress test completed"


async def _three_logs(ctx: CallContext) -> None:
    for i, text in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
        await ctx.log("info", text, "conformance")
        if i < 2:
            await anyio.sleep(0.05)


@toolset.tool(read_only=True)
async def test_tool_with_logging(ctx: CallContext) -> str:
    """Send three log messages to the client, then finish."""
    await _three_logs(ctx)
    return "Tool with logging executed successfully"


@toolset.tool(read_only=True)
async def test_logging_tool(ctx: CallContext) -> str:
    """Log three messages; on 2026-07-28 they reach only a client that opted in with a log level."""
    await _three_logs(ctx)
    return "Logging tool completed"


@toolset.tool(read_only=True)
async def test_sampling(
    prompt: Annotated[str, Field(description="The prompt to send to the client's model.")], ctx: CallContext
) -> str:
    """Ask the client's model to complete a prompt (sampling) and return its answer."""
    return f"LLM response: {await ctx.sample(prompt, max_tokens=100)}"


@toolset.tool(read_only=True)
async def test_elicitation(
    message: Annotated[str, Field(description="What to ask the user.")], ctx: CallContext
) -> str:
    """Ask the user for a username and email (elicitation) and return what they said."""
    schema = {
        "type": "object",
        "properties": {"username": {"type": "string"}, "email": {"type": "string"}},
        "required": ["username", "email"],
    }
    answer = await ctx.elicit(message, schema)
    return "User declined or cancelled" if answer is None else f"User provided: {json.dumps(answer)}"


@toolset.tool(read_only=True)
async def test_elicitation_sep1034_defaults(ctx: CallContext) -> str:
    """Elicit a form whose fields all carry defaults (SEP-1034)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "score": {"type": "number", "default": 95.5},
            "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "default": True},
        },
    }
    answer = await ctx.elicit("Please review your profile", schema)
    return f"Elicitation completed: {json.dumps(answer)}"


@toolset.tool(read_only=True)
async def test_elicitation_sep1330_enums(ctx: CallContext) -> str:
    """Elicit a form with every enum style (SEP-1330): untitled, titled, legacy, and multi-select."""
    titled = [
        {"const": f"value{i}", "title": t} for i, t in enumerate(("First Option", "Second Option", "Third Option"), 1)
    ]
    schema = {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "oneOf": titled},
            "legacyEnum": {
                "type": "string",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {
                "type": "array",
                "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                "minItems": 1,
                "maxItems": 3,
            },
            "titledMulti": {"type": "array", "items": {"anyOf": titled}, "minItems": 1, "maxItems": 3},
        },
    }
    answer = await ctx.elicit("Choose your options", schema)
    return f"Elicitation completed: {json.dumps(answer)}"


JSON_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@toolset.tool(read_only=True, input_schema=JSON_SCHEMA_2020_12)
def json_schema_2020_12_tool(
    name: str | None = None,
    address: dict[str, str] | None = None,
    contactMethod: str | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> str:
    """Tool with JSON Schema 2020-12 features"""
    return f"Received contact for {name or 'someone'} by {contactMethod or 'any method'}"


@toolset.tool(read_only=True)
def test_reconnection() -> str:
    """Answer a call that the suite makes to probe SSE reconnection."""
    return "Reconnection test completed"


@toolset.tool(read_only=True)
def test_streaming_elicitation() -> str:
    """Answer at once, without asking the client anything on the response stream."""
    return "Streaming elicitation test completed without server-initiated requests"


@toolset.tool(read_only=True)
def test_missing_capability(ctx: CallContext) -> str:
    """Refuse unless the client declared the sampling capability."""
    if "sampling" not in ctx.client_capabilities:
        raise MissingCapability("test_missing_capability needs the client's sampling capability", {"sampling": {}})
    return "The client declared sampling"


@toolset.tool(read_only=True)
def test_x_mcp_header(
    region: Annotated[
        str,
        Field(description="Mirrored into the Mcp-Param-Region header.", json_schema_extra={"x-mcp-header": "Region"}),
    ] = "<none>",
) -> str:
    """Echo a parameter that clients also send as an HTTP header (SEP-2243)."""
    return f"region={region}"


@toolset.tool(read_only=True)
def add(a: int, b: int) -> str:
    """Add two integers; a tool whose arguments can be wrong, for Tandem's invalid-arguments tests."""
    return str(a + b)


@toolset.tool(read_only=True)
async def slow(seconds: float = 30.0) -> str:
    """Sleep for the given seconds, stopping when cancelled; for Tandem's cancellation tests."""
    await anyio.sleep(seconds)
    return f"slept {seconds}s"
