"""The one ``Toolset`` object every conformance fixture module registers on."""

import base64
from typing import Any

from tandem.core import CallContext, Toolset

toolset = Toolset("conformance", description="Fixtures for the MCP conformance suite and Tandem's transport tests.")

# The suite's canonical test data: a 1x1 red PNG and a minimal WAV.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
WAV = base64.b64decode("UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=")


def accepted(ctx: CallContext, key: str) -> dict[str, Any] | None:
    """The content of the client's accepted answer to the elicitation under ``key``, or ``None``."""
    answer = (ctx.input_responses or {}).get(key)
    if isinstance(answer, dict) and answer.get("action") == "accept" and isinstance(answer.get("content"), dict):
        return answer["content"]
    return None
