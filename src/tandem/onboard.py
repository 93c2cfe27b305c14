"""``tandem init``: check the machine, write the client configuration, start the daemon and prove it answers.

Claude Code reads a project's ``.mcp.json``; Tandem adds (or updates) its own ``tandem`` entry there, pointing at
the daemon's Streamable HTTP endpoint, and leaves every other server in the file as it was. A file that is not
valid JSON is never overwritten: the user's hand-written configuration is worth more than ours. Claude Desktop
spawns its servers itself (stdio) and keeps one configuration file per user, which Tandem does not edit; it writes
the entry to merge into ``.tandem/clients/claude_desktop_config.json`` and says where that file lives.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.config import Settings
from tandem.core import ToolError, text_files, write_atomic
from tandem.core.commands import tandem_argv

SERVER_NAME = "tandem"
CLAUDE_CODE_FILE = ".mcp.json"
DESKTOP_SNIPPET = Path("clients") / "claude_desktop_config.json"
MIN_PYTHON = (3, 11)
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True

    @property
    def mark(self) -> str:
        return "ok  " if self.ok else ("FAIL" if self.required else "warn")


class InitError(Exception):
    """A step of ``tandem init`` that cannot be done; the message says what to fix."""


def desktop_config_path() -> str:
    """Where Claude Desktop keeps its configuration on this operating system."""
    if sys.platform == "darwin":
        return "~/Library/Application Support/Claude/claude_desktop_config.json"
    if sys.platform.startswith("win"):
        return r"%APPDATA%\Claude\claude_desktop_config.json"
    return "~/.config/Claude/claude_desktop_config.json"


def check_environment(settings: Settings, *, daemon_url: str | None) -> list[Check]:
    """What Tandem needs from this machine. Python and a writable data directory are required; the port must be
    free unless our own daemon holds it; the external programs degrade single tools when missing."""
    version = ".".join(map(str, sys.version_info[:3]))
    checks = [
        Check(
            "python",
            sys.version_info[:2] >= MIN_PYTHON,
            f"Python {version} at {sys.executable}"
            + ("" if sys.version_info[:2] >= MIN_PYTHON else f"; Tandem needs {'.'.join(map(str, MIN_PYTHON))}+"),
        ),
        _writable(settings.data_path),
    ]
    if daemon_url is not None:
        checks.append(Check("port", True, f"Tandem already serves {daemon_url}"))
    else:
        checks.append(_port_free(settings.host, settings.port))
    checks += [_program("git", "git tools and diffs"), _ripgrep(), _ast_grep(), _ruff(settings.workspace)]
    return checks


def _writable(path: Path) -> Check:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        return Check("data directory", False, f"{path} is not writable: {exc.strerror or exc}")
    return Check("data directory", True, f"{path} is writable")


def _port_free(host: str, port: int) -> Check:
    if port == 0:
        return Check("port", True, "a free port is picked at start (port 0)")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = "in use by another program" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            return Check("port", False, f"{host}:{port} is {why}; choose another with --port or MCP_PORT")
    return Check("port", True, f"{host}:{port} is free")


def _program(name: str, needed_for: str) -> Check:
    found = shutil.which(name)
    detail = found if found else f"not on PATH: {needed_for} will report it is missing"
    return Check(name, found is not None, detail, required=False)


def _ripgrep() -> Check:
    from tandem.core.file_list import ripgrep

    try:
        return Check("rg", True, ripgrep(), required=False)
    except ToolError as exc:
        return Check("rg", False, str(exc), required=False)


def _ast_grep() -> Check:
    found = importlib.util.find_spec("ast_grep_py") is not None
    detail = "ast-grep bindings installed" if found else "ast_grep_py missing: structural search and rewrite fail"
    return Check("ast-grep", found, detail, required=False)


def _ruff(workspace: Path) -> Check:
    from tandem.toolsets.code.linters import find_program

    found = find_program("ruff", workspace)
    return Check("ruff", found is not None, found or "not found: Python lint and format fail", required=False)


# -- client configuration ----------------------------------------------------------------------------------------


def claude_code_entry(url: str) -> dict[str, Any]:
    return {"type": "http", "url": f"{url.rstrip('/')}/mcp"}


def write_claude_code_config(workspace: Path, url: str) -> tuple[Path, str]:
    """Add or update ``mcpServers.tandem`` in the workspace's ``.mcp.json``; the path and what was done."""
    path = workspace / CLAUDE_CODE_FILE
    entry = claude_code_entry(url)
    if path.exists():
        try:  # through the confinement function: a .mcp.json that links out of the workspace is refused
            data = json.loads(text_files.read_text(workspace, path, MAX_CONFIG_BYTES).text or "{}")
        except ToolError as exc:
            raise InitError(f"{path}: {exc}") from None
        except ValueError as exc:
            raise InitError(f"{path} is not valid JSON ({exc}); fix it, then run 'tandem init' again") from None
        if not isinstance(data, dict) or not isinstance(data.setdefault("mcpServers", {}), dict):
            raise InitError(f"{path} has no mcpServers object; fix it, then run 'tandem init' again")
        previous = data["mcpServers"].get(SERVER_NAME)
        if previous == entry:
            return path, "already up to date"
        action = "updated" if previous is not None else "added to"
    else:
        data, action = {"mcpServers": {}}, "written"
    data["mcpServers"][SERVER_NAME] = entry
    try:
        write_atomic(workspace, path, (json.dumps(data, indent=2) + "\n").encode())
    except ToolError as exc:
        raise InitError(f"{path}: {exc}") from None
    return path, action


def desktop_entry(settings: Settings) -> dict[str, Any]:
    """Claude Desktop runs its servers itself, over stdio: this Python, this workspace."""
    command, *args = tandem_argv("serve", "--workspace", str(settings.workspace))
    return {"command": command, "args": args}


def write_desktop_snippet(settings: Settings) -> Path:
    path = settings.data_path / DESKTOP_SNIPPET
    text = json.dumps({"mcpServers": {SERVER_NAME: desktop_entry(settings)}}, indent=2) + "\n"
    write_atomic(settings.data_path, path, text.encode(), create_dirs=True)
    return path
