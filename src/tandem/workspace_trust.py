"""Which workspaces' ``tandem.toml`` the user trusts with the settings that reach beyond what a client asks for.

A workspace is often a repository someone else wrote. An untrusted ``tandem.toml`` may only shape what a client
may ask for inside the workspace: which toolsets are served, limits, logging, the project's own test command,
linters, just recipes and SDLC loop (which run the project's code when asked, as its Makefile would). Every other
setting needs the user's trust (``UNTRUSTED_OK`` lists the exceptions; anything new needs trust by default):
upstream servers Tandem starts or reaches on its own, the LLM endpoint it sends text and a key to, the address it
listens on and the hosts and origins it accepts, the command policy and execution backends, git hooks, remotes
and repository config, catalog paths outside the workspace, a data directory outside it. Those are read from a
workspace's ``tandem.toml`` only once the user has trusted that very file: ``tandem trust`` records its SHA-256
under the workspace's path in the user's own configuration directory (``$XDG_CONFIG_HOME/tandem``, else
``~/.config/tandem``), outside any workspace. A file changed since is not trusted until trusted again, as direnv
does with ``.envrc``. Settings given on the command line or in ``TANDEM_*`` variables are the user's own and
need no trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePath
from typing import Any

UNTRUSTED_OK: dict[str, bool | frozenset[str]] = {
    # what a client may be served, and limits
    "toolsets": True,
    "disabled_toolsets": True,
    "profile": True,
    "port": True,
    "stateless_http": True,
    "max_body_bytes": True,
    "max_output_chars": True,
    "max_sessions": True,
    "session_idle_timeout": True,
    "max_file_bytes": True,
    "log_level": True,
    "log_requests": True,
    "tracing": True,
    "warm_up": True,
    "auto_restart": True,
    # the project's own development loop, run when a client asks
    "code": True,
    "sdlc": True,
    "tasks": frozenset({"allow", "justfile", "timeout_s"}),
    "catalog": frozenset(
        {
            "cache_ttl",
            "cache_max_entries",
            "min_similarity",
            "prune_below",
            "prune_after_uses",
            "watch",
            "reindex_interval_s",
            "backups",
            "backup_interval_s",
            "max_database_bytes",
            "log_queries",
        }
    ),
}
"""What an untrusted workspace ``tandem.toml`` may set: a whole key (``True``) or these keys of a table. ``host``
and ``data_dir`` may be set too while they stay on this machine's loopback and inside the workspace."""
STORE = "trusted-workspaces.json"


class TrustError(RuntimeError):
    """The trust store cannot be read or written."""


def store_path() -> Path:
    """Where trusted files are recorded: the user's configuration directory, never a workspace."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tandem" / STORE


def privileged(data: dict[str, Any], known: Iterable[str]) -> list[str]:
    """The settings ``data`` (a parsed ``tandem.toml``) sets that need trust, as dotted names; keys not ``known``
    (not settings at all) are left to the settings' own validation."""
    found = []
    for key in sorted(set(data) & set(known)):
        value, allowed = data[key], UNTRUSTED_OK.get(key, False)
        if allowed is True or (key == "host" and _loopback(value)) or (key == "data_dir" and _inside(value)):
            continue
        if isinstance(allowed, frozenset) and isinstance(value, dict):
            found += [f"{key}.{sub}" for sub in sorted(value) if sub not in allowed]
        else:
            found.append(key)
    return found


def without(data: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``data`` less the settings ``names`` (as ``privileged`` gives them)."""
    kept = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for name in names:
        key, _, sub = name.partition(".")
        if sub and isinstance(kept.get(key), dict):
            kept[key].pop(sub, None)
        else:
            kept.pop(key, None)
    return kept


def _loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _inside(path: Any) -> bool:
    """Whether a relative data directory stays inside the workspace."""
    return isinstance(path, str) and not PurePath(path).is_absolute() and ".." not in PurePath(path).parts


def shown(value: Any) -> str:
    """A setting's value as the user reads it before trusting it: JSON with every character past ASCII and every
    control character escaped, so no terminal sequence in the file can hide or rewrite what is shown."""
    return json.dumps(value, ensure_ascii=True, sort_keys=True)


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


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Hold the store's lock: two ``tandem trust`` at once must not lose one's entry."""
    path = store_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = os.open(path.with_name(f".{STORE}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise TrustError(f"cannot lock {path}: {exc.strerror or exc}") from None
    try:
        with contextlib.suppress(ImportError):  # Windows has no flock: concurrent trusts there are not serialised
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def trust(workspace: Path, content: bytes) -> None:
    """Record that the user trusts this workspace's ``tandem.toml`` as it is now (``content``)."""
    with _locked():
        workspaces = _read()
        workspaces[str(workspace)] = {"sha256": digest(content)}
        _write(workspaces)


def revoke(workspace: Path) -> bool:
    """Forget this workspace's trusted file; whether there was one."""
    with _locked():
        workspaces = _read()
        if workspaces.pop(str(workspace), None) is None:
            return False
        _write(workspaces)
        return True
