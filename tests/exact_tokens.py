"""tiktoken's own count of a text, from the encoder itself: what Tandem's counts (cached, summed by block or by
part) are checked against, so no test compares Tandem's counting with itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tandem.core.tokens import EncodingName, encoding

ROOT = Path(__file__).resolve().parents[1]


def tiktoken_count(text: str, name: EncodingName = "o200k_base") -> int:
    return len(encoding(name).encode_ordinary(text))


def repository_texts() -> list[str]:
    """Every file of Tandem's own repository that git lists and that reads as UTF-8: real text to count."""
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    texts = []
    for path in listed.splitlines():
        try:
            texts.append((ROOT / path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    return texts
