"""Resource fixtures: a static text, a static binary, a template, and a resource to subscribe to."""

from __future__ import annotations

import json

from tandem.toolsets.conformance.toolset import PNG, toolset


@toolset.resource("test://static-text", name="static-text", description="A fixed text resource.")
def static_text() -> str:
    return "This is the content of the static text resource."


@toolset.resource("test://static-binary", name="static-binary", description="A 1x1 PNG.", mime_type="image/png")
def static_binary() -> bytes:
    return PNG


@toolset.resource(
    "test://template/{id}/data", name="template-data", description="Data for one id.", mime_type="application/json"
)
def template_data(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@toolset.resource("test://watched-resource", name="watched-resource", description="A resource to subscribe to.")
def watched_resource() -> str:
    return "Watched resource content"
