"""Token counts with tiktoken, offline and exact: the one token-counting module every toolset uses.

tiktoken downloads its vocabulary files on first use, which fails on a machine without internet access. The
``bpe-openai`` package ships the official ``o200k_base`` and ``cl100k_base`` files (gzipped); Tandem hands those to
tiktoken's own encoding constructor after checking them against the sha256 tiktoken itself expects, so the counts
are tiktoken's, byte for byte, and nothing is fetched.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib.util
import threading
from pathlib import Path
from typing import Literal

import tiktoken
from tiktoken_ext import openai_public

EncodingName = Literal["o200k_base", "cl100k_base"]
DEFAULT_ENCODING: EncodingName = "o200k_base"
ENCODINGS: tuple[EncodingName, ...] = ("o200k_base", "cl100k_base")

_constructing = threading.Lock()


class VocabularyError(RuntimeError):
    """The bundled vocabulary file is missing or is not the one tiktoken expects."""


def _bundled(url: str) -> Path:
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise VocabularyError("the bpe-openai package (which ships tiktoken's vocabulary files) is not installed")
    stem = url.rsplit("/", 1)[-1]
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{stem}.gz"
    if not path.is_file():
        raise VocabularyError(f"bpe-openai ships no {stem}")
    return path


def _load_bundled_bpe(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
    """tiktoken's ``load_tiktoken_bpe``, reading the bundled copy of ``url`` instead of downloading it."""
    data = gzip.decompress(_bundled(url).read_bytes())
    if expected_hash is not None and hashlib.sha256(data).hexdigest() != expected_hash:
        raise VocabularyError(f"the bundled copy of {url} does not have the sha256 tiktoken expects")
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def encoding(name: EncodingName = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding ``name``, built from the bundled vocabulary (once per process)."""
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; choose one of {', '.join(ENCODINGS)}")
    constructor = getattr(openai_public, name)
    # tiktoken's constructor knows the pattern, special tokens and hash; only its loader is swapped, and only for
    # the length of this call (the lock keeps two first uses from interleaving the swap).
    with _constructing:
        original = openai_public.load_tiktoken_bpe
        openai_public.load_tiktoken_bpe = _load_bundled_bpe
        try:
            parameters = constructor()
        finally:
            openai_public.load_tiktoken_bpe = original
    return tiktoken.Encoding(**parameters)


def count_tokens(text: str, encoding_name: EncodingName = DEFAULT_ENCODING) -> int:
    """How many tokens ``text`` is; special-token text (``<|endoftext|>``) counts as the plain text it is."""
    return len(encoding(encoding_name).encode_ordinary(text))


def count_many(texts: list[str], encoding_name: EncodingName = DEFAULT_ENCODING) -> list[int]:
    """``count_tokens`` of each text, encoded in tiktoken's thread pool."""
    return [len(tokens) for tokens in encoding(encoding_name).encode_ordinary_batch(texts)]
