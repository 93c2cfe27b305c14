"""Token counts of tiktoken's encodings, offline and exact: the one token-counting module every toolset uses.

The counts are those of tiktoken's ``o200k_base`` and ``cl100k_base`` encodings. They are computed with the Rust
tokenizer of GitHub's ``bpe`` crate (``bpe-openai``), which applies tiktoken's own pre-tokenizer regex and gives
tiktoken's tokens: it counts 1.8 times as fast as tiktoken and is ready in 0.05 s where tiktoken's encoder takes
0.2 s to build. Tests hold it to tiktoken itself (``encoding``) on every file of Tandem's repository and on text
generated to find a difference; where its extension cannot be loaded, tiktoken counts.

tiktoken downloads its vocabulary files on first use, which fails on a machine without internet access. The
``bpe-openai`` package ships the official ``o200k_base`` and ``cl100k_base`` files (gzipped); Tandem hands those to
tiktoken's own encoding constructor after checking them against the sha256 tiktoken itself expects, so nothing is
fetched. The parsed vocabulary is kept in the user's cache directory (``~/.cache/tandem``), which a later process
reads in a third of the time parsing takes.

Counting splits a text into blocks at blank lines followed by a line that starts with a character other than
whitespace or ``/``. tiktoken's pre-tokenizer (the regex of ``o200k_base`` and of ``cl100k_base``) never joins a
newline with such a character in one piece, so every piece ends at such a boundary, and the count of the text is
the sum of the counts of its blocks, exactly. Block counts are remembered: a pack counts each file, then each
file's chunk of the output (the file with its header and footer), whose blocks are mostly the file's blocks again,
so the second count costs little.

Counts of whole texts are also kept between processes (``tandem.core.result_cache``, keyed by the text's digest),
so a pack of a codebase that barely changed counts only what changed, and needs no tokenizer at all when nothing
did. ``count_joined`` counts a text given as parts from the parts' counts wherever a part starts after a newline
with a character other than whitespace or ``/`` (there too no piece crosses the cut).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import hashlib
import importlib.machinery
import importlib.util
import logging
import marshal
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Protocol

import tiktoken
from tiktoken_ext import openai_public

from tandem.core import result_cache

EncodingName = Literal["o200k_base", "cl100k_base"]
DEFAULT_ENCODING: EncodingName = "o200k_base"
ENCODINGS: tuple[EncodingName, ...] = ("o200k_base", "cl100k_base")

_constructing = threading.Lock()
_log = logging.getLogger(__name__)


class VocabularyError(RuntimeError):
    """The bundled vocabulary file is missing or is not the one tiktoken expects."""


@functools.cache
def _bpe_openai() -> Path | None:
    """The directory of the installed ``bpe_openai`` package (found, not imported); ``None`` if there is none."""
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _checked(name: str) -> None:
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; choose one of {', '.join(ENCODINGS)}")


def _bundled(url: str) -> Path:
    package = _bpe_openai()
    if package is None:
        raise VocabularyError("the bpe-openai package (which ships tiktoken's vocabulary files) is not installed")
    stem = url.rsplit("/", 1)[-1]
    path = package / "data" / f"{stem}.gz"
    if not path.is_file():
        raise VocabularyError(f"bpe-openai ships no {stem}")
    return path


BLOCK_BOUNDARY = re.compile(r"\n\n(?=[^\s/])")
"""Where a text is cut into blocks: after a blank line, before a character tiktoken cannot join to a newline."""
MAX_REMEMBERED_CHARS = 64 * 1024 * 1024
"""How much block text the count cache holds before it starts again."""
PARALLEL_CHARS = 512 * 1024
"""Below this much text for tiktoken to encode, threads cost more than they save."""
WORKER_SHARE_CHARS = 64 * 1024
"""Below this much text to encode in the worker processes, one of them does it all."""
PREPARED = "tandem.core.encoder_prepared"
"""The module whose import builds the default encoding's counter: what worker processes preload
(``worker_processes.preload``), so that they count in place of this process."""


MAX_REMEMBERED_TEXTS = 200_000
"""Whole-text counts held in memory (by digest) before that cache starts again."""


def _parse(data: bytes) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _load_bundled_bpe(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
    """tiktoken's ``load_tiktoken_bpe``, reading the bundled copy of ``url`` instead of downloading it: parsed
    once, then read from the cache (a file named by the sha256 of the bundled file, checked when read)."""
    packed = _bundled(url).read_bytes()
    cached = result_cache.cache_dir() / f"{url.rsplit('/', 1)[-1]}-{hashlib.sha256(packed).hexdigest()[:32]}.marshal"
    stored = result_cache.read_checked(cached)
    if stored is not None:
        with contextlib.suppress(ValueError, EOFError, TypeError):  # a damaged cache: parse the bundled file again
            ranks = marshal.loads(stored)
            if isinstance(ranks, dict):
                return ranks
    data = gzip.decompress(packed)
    if expected_hash is not None and hashlib.sha256(data).hexdigest() != expected_hash:
        raise VocabularyError(f"the bundled copy of {url} does not have the sha256 tiktoken expects")
    ranks = _parse(data)
    result_cache.write_checked(cached, marshal.dumps(ranks))
    return ranks


_built: dict[EncodingName, tiktoken.Encoding] = {}
"""The encodings built, under ``_constructing``: what a thread that waited for another's build finds. (``encoding``'s
own cache then serves every later call without taking the lock.)"""


@functools.cache
def encoding(name: EncodingName = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding ``name``, built from the bundled vocabulary once per process: what the counts agree
    with, and what counts where bpe-openai's tokenizer cannot be loaded. A second thread asking while the first
    builds it waits for that one instead of building another (0.15 s of CPU and 80 MB)."""
    _checked(name)
    with _constructing:
        built = _built.get(name)
        if built is None:
            # tiktoken's constructor knows the pattern, special tokens and hash; only its loader is swapped, and
            # only for the length of this call.
            original = openai_public.load_tiktoken_bpe
            openai_public.load_tiktoken_bpe = _load_bundled_bpe
            try:
                parameters = getattr(openai_public, name)()
            finally:
                openai_public.load_tiktoken_bpe = original
            built = _built[name] = tiktoken.Encoding(**parameters)
    return built


class _Tokenizer(Protocol):
    def count(self, text: str) -> int: ...


_BINDINGS = "bpe_openai._bindings"


@functools.cache
def _rust_tokenizers() -> Any | None:
    """bpe-openai's extension module (GitHub's ``bpe`` crate), or ``None`` where it cannot be loaded. Loaded by
    itself: importing the ``bpe_openai`` package would first parse its vocabularies in Python (0.4 s) for a
    tiktoken-like wrapper Tandem does not use."""
    loaded = sys.modules.get(_BINDINGS)
    if loaded is not None:
        return loaded
    package = _bpe_openai()
    if package is None:
        return None
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = package / f"_bindings{suffix}"
        if not path.is_file():
            continue
        found = importlib.util.spec_from_file_location(_BINDINGS, path)
        if found is None or found.loader is None:
            continue
        try:
            module = importlib.util.module_from_spec(found)
            found.loader.exec_module(module)
        except (ImportError, OSError) as exc:
            _log.warning("bpe-openai's tokenizer could not be loaded (%s); tiktoken counts instead", exc)
            return None
        sys.modules[_BINDINGS] = module
        return module
    return None


@functools.cache
def counting_engine() -> str:
    """What counts: ``bpe-openai-<version>``, or ``tiktoken-<version>`` where bpe-openai's tokenizer cannot be
    loaded (part of the key under which counts are kept between processes)."""
    if _rust_tokenizers() is None:
        return f"tiktoken-{tiktoken.__version__}"
    package = _bpe_openai()
    assert package is not None  # found by _rust_tokenizers
    installed = package.parent.glob("bpe_openai-*.dist-info")
    versions = [path.name.removesuffix(".dist-info").partition("-")[2] for path in installed]
    return f"bpe-openai-{versions[0] if len(versions) == 1 else 'unknown'}"


_counting_here: set[EncodingName] = set()
"""The encodings this process has built a counter for (``counter``)."""


@functools.cache
def counter(name: EncodingName = DEFAULT_ENCODING) -> Callable[[str], int]:
    """A function giving the number of tokens of a text in encoding ``name``: bpe-openai's tokenizer (ready in
    0.05 s, 70 MB), else tiktoken's encoder (``encoding``). Special-token text counts as the plain text it is."""
    _checked(name)
    module = _rust_tokenizers()
    _counting_here.add(name)
    if module is None:
        encoder = encoding(name)
        return lambda text: len(encoder.encode_ordinary(text))
    tokenizer: _Tokenizer = module.tokenizer_for_encoding(name)

    def count(text: str) -> int:
        try:
            return tokenizer.count(text)
        except UnicodeEncodeError:
            # A lone surrogate: replaced, as tiktoken's encode_ordinary replaces it, before counting.
            return tokenizer.count(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))

    return count


_remembered: dict[EncodingName, dict[str, int]] = {name: {} for name in ENCODINGS}
"""Block text -> count, in this process."""
_texts: dict[EncodingName, dict[bytes, int]] = {name: {} for name in ENCODINGS}
"""Whole text's digest -> count, in this process (the same entries as the result cache holds)."""
_remembered_chars = dict.fromkeys(ENCODINGS, 0)
_remembering = threading.Lock()


def blocks(text: str) -> list[str]:
    """``text`` cut where tiktoken's pieces always end (see the module's doc): the blocks' counts add up to its
    count."""
    cuts = [match.end() for match in BLOCK_BOUNDARY.finditer(text)]
    return [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def _count_blocks(pieces: set[str], encoding_name: EncodingName) -> dict[str, int]:
    """The count of each block, from the cache or encoded: in the worker processes where they count
    (``_in_workers``), else here."""
    known = _remembered[encoding_name]
    counts: dict[str, int] = {}
    missing: list[str] = []
    for piece in pieces:
        number = known.get(piece)
        if number is None:
            missing.append(piece)
        else:
            counts[piece] = number
    if not missing:
        return counts
    size = sum(map(len, missing))
    found = _encoded_in_workers(missing, encoding_name, size) if _in_workers(encoding_name) else None
    if found is None:
        found = _encoded_here(missing, encoding_name, size)
    with _remembering:
        if _remembered_chars[encoding_name] + size > MAX_REMEMBERED_CHARS:
            known.clear()
            _remembered_chars[encoding_name] = 0
        known.update(found)
        _remembered_chars[encoding_name] += size
    return counts | found


def _encoded_here(pieces: list[str], encoding_name: EncodingName, size: int) -> dict[str, int]:
    """The count of each piece, encoded in this process (by tiktoken in threads, when there is enough to encode:
    bpe-openai's tokenizer holds the GIL, and alone counts faster than tiktoken in two threads)."""
    workers = min(os.cpu_count() or 1, 8)
    if size >= PARALLEL_CHARS and workers > 1 and _rust_tokenizers() is None:
        # tiktoken encodes without holding the GIL; one task per thread, over its share of the blocks, keeps the
        # overhead per block low.
        shares = [pieces[i::workers] for i in range(workers)]
        with ThreadPoolExecutor(workers) as pool:
            numbers = pool.map(lambda share: encode_counts(share, encoding_name), shares)
            pairs = (zip(share, counted, strict=True) for share, counted in zip(shares, numbers, strict=True))
            return {piece: n for pair in pairs for piece, n in pair}
    return dict(zip(pieces, encode_counts(pieces, encoding_name), strict=True))


def encode_counts(pieces: list[str], encoding_name: EncodingName) -> list[int]:
    """The count of each of ``pieces``, encoded in this process: a worker process's task."""
    return list(map(counter(encoding_name), pieces))


def _in_workers(encoding_name: EncodingName) -> bool:
    """Whether counts are encoded in the worker processes: they run (or start from their fork server in
    milliseconds) with this counter built before they were forked, and this process has built none of its own.
    Threads here share one GIL (bpe-openai's tokenizer holds it; tiktoken's, in two threads, counts 1.3 times as
    fast as one, for 1.6 times the CPU); processes do not, and this process is spared the counter's memory."""
    if encoding_name != DEFAULT_ENCODING or encoding_name in _counting_here:
        return False
    from tandem.core import worker_processes

    return worker_processes.started() and PREPARED in worker_processes.preloaded()


def _encoded_in_workers(pieces: list[str], encoding_name: EncodingName, size: int) -> dict[str, int] | None:
    """The count of each piece, encoded in the worker processes (a share of the characters each); ``None`` when
    the pool broke or was shut down meanwhile (the caller counts here instead)."""
    from concurrent.futures import CancelledError
    from concurrent.futures.process import BrokenProcessPool

    from tandem.core import worker_processes

    count = worker_processes.worker_count() if size >= WORKER_SHARE_CHARS else 1
    shares: list[list[str]] = [[] for _ in range(count)]
    sizes = [0] * count
    for piece in sorted(pieces, key=len, reverse=True):  # the largest first, each to the lightest share
        lightest = sizes.index(min(sizes))
        shares[lightest].append(piece)
        sizes[lightest] += len(piece)
    try:
        futures = [worker_processes.submit(encode_counts, share, encoding_name) for share in shares if share]
        counted = [future.result() for future in futures]
    except (BrokenProcessPool, CancelledError, RuntimeError):  # broken, or shut down meanwhile
        return None
    asked = [piece for share in shares if share for piece in share]
    return dict(zip(asked, (n for part in counted for n in part), strict=True))


def count_tokens(text: str, encoding_name: EncodingName = DEFAULT_ENCODING) -> int:
    """How many tokens ``text`` is; special-token text (``<|endoftext|>``) counts as the plain text it is."""
    return count_many([text], encoding_name)[0]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _kind(encoding_name: EncodingName) -> str:
    return f"tokens/{encoding_name}/{counting_engine()}"


def count_many(texts: Sequence[str], encoding_name: EncodingName = DEFAULT_ENCODING, keep: bool = True) -> list[int]:
    """``count_tokens`` of each text: remembered whole, kept between processes, or counted block by block.
    ``keep=False`` keeps new counts out of the result cache (a file's every line, counted to split it, would push
    out what later packs look for)."""
    _checked(encoding_name)
    known = _texts[encoding_name]
    keyed = {i: _digest(text) for i, text in enumerate(texts) if text}
    counts: dict[int, int] = {i: 0 for i, text in enumerate(texts) if not text}
    for i, key in keyed.items():
        number = known.get(key)  # get, not "in" then [], since another thread may clear the dict in between
        if number is not None:
            counts[i] = number
    asked = {key for i, key in keyed.items() if i not in counts}
    stored = result_cache.shared().get_many(_kind(encoding_name), asked) if asked else {}
    for i, key in keyed.items():
        value = stored.get(key)
        if i not in counts and isinstance(value, int):
            counts[i] = value
    rest = [i for i in range(len(texts)) if i not in counts]
    split = {i: blocks(texts[i]) for i in rest}
    by_block = _count_blocks({piece for pieces in split.values() for piece in pieces}, encoding_name) if rest else {}
    for i, pieces in split.items():
        counts[i] = sum(by_block[piece] for piece in pieces)
    fresh = {keyed[i]: counts[i] for i in rest if i in keyed}
    if fresh and keep:
        result_cache.shared().put_later(_kind(encoding_name), fresh)
    if len(known) + len(keyed) > MAX_REMEMBERED_TEXTS:
        known.clear()
    known.update((key, counts[i]) for i, key in keyed.items())
    return [counts[i] for i in range(len(texts))]


def cuts_cleanly(before: str, after: str) -> bool:
    """Whether ``before + after`` counts as ``before`` and ``after`` counted apart: ``before`` ends with a newline
    and ``after`` starts with a character tiktoken's pre-tokenizer never joins to it (not whitespace, not ``/``)."""
    return before.endswith("\n") and bool(after) and not after[0].isspace() and after[0] != "/"


def _cut(part: str) -> list[str]:
    """``part`` cut after its first line and before its last, where the cuts are clean: a file's chunk of a pack
    (its header line, the file, its closing line) becomes the file's own text, whose count is known, between two
    short lines."""
    pieces: list[str] = []
    head = part.find("\n") + 1
    if 0 < head < len(part) and cuts_cleanly(part[:head], part[head:]):
        pieces.append(part[:head])
        part = part[head:]
    tail = part.rstrip("\n").rfind("\n") + 1
    if 0 < tail < len(part) and cuts_cleanly(part[:tail], part[tail:]):
        return [*pieces, part[:tail], part[tail:]]
    return [*pieces, part]


def count_joined(parts: Sequence[str], encoding_name: EncodingName = DEFAULT_ENCODING) -> int:
    """``count_tokens("".join(parts))``, from counts of the parts (remembered and kept like any text's), each
    part cut after its first line and before its last where the cuts are clean: pieces that meet where a token
    could cross are counted together."""
    groups: list[list[str]] = []
    for part in (piece for whole in parts for piece in _cut(whole)):
        if not part:
            continue
        if groups and not cuts_cleanly(groups[-1][-1], part):
            groups[-1].append(part)
        else:
            groups.append([part])
    return sum(count_many(["".join(group) for group in groups], encoding_name))
