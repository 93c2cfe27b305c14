"""The core's names load on first use: each is the object its module defines, and a worker process (the secret
scanner, its fork server) imports neither pydantic nor tree-sitter nor the MCP SDK."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import tandem.core


def test_every_public_name_is_its_modules_object() -> None:
    import tandem.core.workspace_path  # the module's import must not replace the function's name

    for name in tandem.core.__all__:
        value = getattr(tandem.core, name)
        if name in tandem.core._SUBMODULES:
            assert value is importlib.import_module(f"tandem.core.{name}")
        else:
            assert getattr(value, "__module__", "").startswith("tandem.core."), name
            assert getattr(importlib.import_module(value.__module__), name) is value, name
    assert callable(tandem.core.workspace_path)
    from tandem.core import CallContext, workspace_path

    assert callable(workspace_path) and CallContext.__module__ == "tandem.core.context"


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        tandem.core.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_the_scanner_imports_nothing_heavy() -> None:
    code = (
        "import json, sys; import tandem.core.secret_scan_prepared; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(done.stdout))
    assert "detect_secrets" in loaded  # prepared: the scanner's own library is loaded
    assert not loaded & {"pydantic", "pydantic_settings", "mcp", "tree_sitter", "tree_sitter_language_pack", "typer"}
