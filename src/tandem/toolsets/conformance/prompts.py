"""Prompt fixtures: simple, with arguments (and completion), with an embedded resource, with an image."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tandem.core import EmbeddedResource, Image, PromptMessage, Text
from tandem.toolsets.conformance.toolset import PNG, toolset


@toolset.prompt(description="A simple prompt without arguments.")
def test_simple_prompt() -> str:
    return "This is a simple prompt for testing."


@toolset.prompt(description="A prompt with two required arguments.")
def test_prompt_with_arguments(
    arg1: Annotated[str, Field(description="First test argument")],
    arg2: Annotated[str, Field(description="Second test argument")],
) -> str:
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@toolset.completion("test_prompt_with_arguments", "arg1")
def complete_arg1(value: str, context: dict[str, str]) -> list[str]:
    return [v for v in ("paris", "park", "party") if v.startswith(value)]


@toolset.prompt(description="A prompt that embeds a resource.")
def test_prompt_with_embedded_resource(
    resourceUri: Annotated[str, Field(description="URI of the resource to embed")],
) -> list[PromptMessage]:
    return [
        PromptMessage(
            "user", EmbeddedResource(resourceUri, "text/plain", text="Embedded resource content for testing.")
        ),
        PromptMessage("user", Text("Please process the embedded resource above.")),
    ]


@toolset.prompt(description="A prompt that carries an image.")
def test_prompt_with_image() -> list[PromptMessage]:
    return [
        PromptMessage("user", Image(PNG, "image/png")),
        PromptMessage("user", Text("Please analyze the image above.")),
    ]
