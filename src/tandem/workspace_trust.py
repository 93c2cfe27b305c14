"""Which workspaces' ``tandem.toml`` the user trusts with the settings that make Tandem act on its own.

A workspace is often a repository someone else wrote. Most of its ``tandem.toml`` only shapes what the assistant
may ask for, but a few settings make Tandem act unasked: ``[[gateway.upstreams]]`` starts a program (or connects
to a server) when Tandem starts, and ``[llm]`` ``base_url`` / ``api_key_env`` send the workspace's text, and an
API key, to a host of the file's choosing. Those are read from a workspace's ``tandem.toml`` only once the user
has trusted that very file: ``tandem trust`` records its SHA-256 under the workspace's path in the user's own
configuration directory (``$XDG_CONFIG_HOME/tandem``, else ``~/.config/tandem``), outside any workspace. A file
changed since is not trusted until trusted again, as direnv does with ``.envrc``. The same settings given on the
command line or in ``TANDEM_*`` variables are the user's own and need no trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

PRIVILEGED: tuple[tuple[str, str], ...] = (("gateway", "upstreams"), ("llm", "base_url"), ("llm", "api_key_env"))
"""The settings (table, key) a workspace's ``tandem.toml`` may set only when the user trusts it."""
STORE = "trusted-workspaces.json"


class TrustError(RuntimeError):
    """The trust store cannot be read or written."""


def store_path() -> Path:
    """Where trusted files are recorded: the user's configuration directory, never a workspace."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tandem" / STORE


def privileged(data: dict[str, Any]) -> list[str]:
    """The privileged settings ``data`` (a parsed ``tandem.toml``) sets, as dotted names."""
    found = []
    for table, key in PRIVILEGED:
        section = data.get(table)
        if isinstance(section, dict) and section.get(key) not in (None, "", []):
            found.append(f"{table}.{key}")
    return found


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _read() -> dict[str, Any]:
    path = store_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise TrustError(f"cannot read {path}: {exc}") from None
    workspaces = data.get("workspaces") if isinstance(data, dict) else None
    return workspaces if isinstance(workspaces, dict) else {}


def _write(workspaces: dict[str, Any]) -> None:
    path = store_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{STORE}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:  # mkstemp made it 0600
                json.dump({"version": 1, "workspaces": workspaces}, out, indent=2, sort_keys=True)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise TrustError(f"cannot write {path}: {exc.strerror or exc}") from None


def is_trusted(workspace: Path, content: bytes) -> bool:
    """Whether the user trusts this workspace's ``tandem.toml`` with exactly this ``content``."""
    entry = _read().get(str(workspace))
    return isinstance(entry, dict) and entry.get("sha256") == digest(content)


def trust(workspace: Path, content: bytes) -> None:
    """Record that the user trusts this workspace's ``tandem.toml`` as it is now (``content``)."""
    workspaces = _read()
    workspaces[str(workspace)] = {"sha256": digest(content)}
    _write(workspaces)


def revoke(workspace: Path) -> bool:
    """Forget this workspace's trusted file; whether there was one."""
    workspaces = _read()
    if workspaces.pop(str(workspace), None) is None:
        return False
    _write(workspaces)
    return True
