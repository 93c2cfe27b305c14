"""Reading a confined file as text: binary detection, a size limit, encoding detection, and the content hash that
later writes compare against (a lost-update guard)."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tandem.core.errors import ToolError
from tandem.core.workspace_path import open_in_workspace, relative_display

SNIFF_BYTES = 8192
"""How much of a file is looked at for a NUL byte, the sign of a binary."""
_COMMON_ENCODINGS = ("utf_16", "cp1252", "latin_1", "cp1251", "shift_jis", "gb18030", "euc_kr", "big5", "cp1250")


@dataclass(frozen=True, slots=True)
class FileText:
    """A text file's content as read: the text, how it was decoded, and the sha256 of its bytes."""

    text: str
    encoding: str
    sha256: str


def read_bytes(root: Path, path: Path, max_bytes: int, *, hint: str = "") -> bytes:
    """The bytes of a confined regular file of at most ``max_bytes``; ``ToolError`` (with ``hint``) otherwise."""
    fd = open_in_workspace(root, path)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise ToolError(f"{relative_display(root, path)} is a directory")
        if info.st_size > max_bytes:
            raise ToolError(
                f"{relative_display(root, path)} is {info.st_size} bytes, over the {max_bytes}-byte limit "
                f"(max_file_bytes){'; ' + hint if hint else ''}"
            )
        return handle.read(max_bytes + 1)[:max_bytes]


def read_text(root: Path, path: Path, max_bytes: int, *, hint: str = "") -> FileText:
    """The whole text of a confined file; binaries and files over ``max_bytes`` are refused with a ``ToolError``."""
    data = read_bytes(root, path, max_bytes, hint=hint)
    if b"\x00" in data[:SNIFF_BYTES]:
        raise ToolError(
            f"{relative_display(root, path)} is a binary file ({len(data)} bytes); it cannot be read as text"
        )
    text, encoding = decode(data)
    return FileText(text=text, encoding=encoding, sha256=hashlib.sha256(data).hexdigest())


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding: UTF-8 when it decodes, else charset-normalizer's best guess among the common ones."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes  # only text that is not UTF-8 needs it (and its import time)

    candidates = list(from_bytes(data[:65536]))
    if not candidates:
        return data.decode("latin-1"), "latin-1"
    # Short texts leave several single-byte code pages about equally likely; the common ones are the better bet.
    best = candidates[0]
    close = [c for c in candidates if c.chaos <= best.chaos + 0.1 and c.coherence >= best.coherence - 0.05]
    encoding = next((e for e in _COMMON_ENCODINGS if any(c.encoding == e for c in close)), best.encoding)
    return data.decode(encoding, errors="replace"), encoding
