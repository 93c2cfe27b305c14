"""tiktoken's own count of a text, from the encoder itself: what Tandem's counts (cached, summed by block or by
part) are checked against, so no test compares Tandem's counting with itself."""

from __future__ import annotations

from tandem.core.tokens import EncodingName, encoding


def tiktoken_count(text: str, name: EncodingName = "o200k_base") -> int:
    return len(encoding(name).encode_ordinary(text))
