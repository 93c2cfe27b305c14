"""Counting a text block by block (cut at blank lines) gives exactly tiktoken's count of the whole text, for both
encodings, on real files, on a packed codebase and on text built to sit on the cut points; and the parsed
vocabulary cache is used and checked."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from tandem.core import tokens
from tests.exact_tokens import repository_texts

PIECES = [
    "\n",
    "\n\n",
    "\n\n\n",
    " ",
    "  ",
    "\t",
    "\r\n",
    "/",
    "//",
    "#",
    "<",
    ">",
    '"',
    "'",
    "x",
    "Ab",
    "42",
    "é",
    "🚀",
    "ǅ",
    "\u00a0",
    "\u2028",
    "'s",
    "def",
    "  return",
    "</file>",
    '<file path="a">',
    ".",
    "\\",
    "\x0b",
]


def _plain(text: str, name: tokens.EncodingName) -> int:
    return len(tokens.encoding(name).encode_ordinary(text))


@pytest.mark.parametrize("name", tokens.ENCODINGS)
def test_block_counts_add_up_on_text_built_on_the_cuts(name: tokens.EncodingName) -> None:
    chance = random.Random(7)
    texts = ["".join(chance.choice(PIECES) for _ in range(chance.randint(0, 400))) for _ in range(1500)]
    assert sum(len(tokens.blocks(text)) for text in texts) > 3000  # the texts really are cut
    assert tokens.count_many(texts, name) == [_plain(text, name) for text in texts]
    joined = "\n\n".join(texts)
    assert tokens.count_tokens(joined, name) == _plain(joined, name)


@pytest.mark.parametrize("name", tokens.ENCODINGS)
def test_block_counts_add_up_on_the_repository(name: tokens.EncodingName) -> None:
    texts = repository_texts()
    assert tokens.count_many(texts, name) == [_plain(text, name) for text in texts]
    packed = "".join(f'<file path="{i}">\n{text.rstrip()}\n</file>\n\n' for i, text in enumerate(texts))
    assert tokens.count_tokens(packed, name) == _plain(packed, name)


def test_the_parsed_vocabulary_is_cached_and_checked(tmp_path: Path) -> None:
    """tiktoken's encoder (the reference, and the fallback) is built from a parsed vocabulary kept in the cache."""
    code = "from tandem.core.tokens import encoding; print(len(encoding().encode_ordinary('hello world')))"
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert first.stdout.strip() == "2", first.stderr
    [cached] = (tmp_path / "tandem").glob("o200k_base.tiktoken-*.marshal")
    cached.write_bytes(cached.read_bytes()[:-100])  # damaged: it must be parsed again, not trusted
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert again.stdout.strip() == "2", again.stderr
    assert len(cached.read_bytes()) > 1_000_000  # rewritten whole
