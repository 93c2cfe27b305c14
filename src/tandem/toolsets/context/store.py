"""Packs kept by id, so a model can page through a large one (``read_packed``) or search it (``grep_packed``)
instead of receiving it whole. Each pack is a text file plus a JSON file of its counts in the data directory
(``.tandem/packs/``): written atomically, kept across restarts, the oldest removed past ``KEEP``."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.core import ToolError, write_atomic

KEEP = 20
"""Packs kept; writing another removes the oldest."""
_ID = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class StoredPack:
    id: str
    text_path: Path
    meta: dict[str, Any]

    def text(self) -> str:
        """The pack as it was made and counted (no newline translated)."""
        return self.text_path.read_bytes().decode("utf-8")

    def lines(self) -> list[str]:
        return lines_of(self.text())


def lines_of(text: str) -> list[str]:
    """``text``'s lines, split at newlines only, as a pack's parts, its line count and ripgrep number them: a
    carriage return, form feed or line separator inside a packed file stays in its line."""
    return text.removesuffix("\n").split("\n") if text else []


class PackStore:
    def __init__(self, directory: Path, keep: int = KEEP) -> None:
        self.directory = directory
        self.keep = keep

    def save(self, text: str, meta: dict[str, Any]) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        pack_id = secrets.token_hex(6)
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        described = json.dumps({**meta, "id": pack_id, "lines": lines}, indent=2)
        write_atomic(self.directory, self.directory / f"{pack_id}.txt", text.encode())
        write_atomic(self.directory, self.directory / f"{pack_id}.json", described.encode())
        self._prune()
        return pack_id

    def get(self, pack_id: str) -> StoredPack:
        if not _ID.match(pack_id):
            raise ToolError(f"{pack_id!r} is not a pack id (12 hex digits, from pack_codebase)")
        text_path, meta_path = self.directory / f"{pack_id}.txt", self.directory / f"{pack_id}.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ToolError(f"no pack {pack_id!r}: it was never made here or is one of the oldest, removed") from None
        if not text_path.is_file():
            raise ToolError(f"pack {pack_id!r} has lost its text; pack again")
        return StoredPack(pack_id, text_path, meta)

    def _prune(self) -> None:
        metas = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in metas[self.keep :]:
            for path in (old, old.with_suffix(".txt")):
                path.unlink(missing_ok=True)
