"""Token counts are tiktoken's own and need no network: bpe-openai's tokenizer counts, and agrees with tiktoken's
encoder (built from the vocabulary bpe-openai ships, hash-checked) on everything thrown at it."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.core import tokens
from tests.exact_tokens import repository_texts


def test_counts_are_exact_for_both_encodings() -> None:
    # Reference counts from OpenAI's published tokenizers.
    assert tokens.count_tokens("hello world") == 2
    assert tokens.count_tokens("hello world", "cl100k_base") == 2
    text = "def add(a, b):\n    return a + b  # ünïcödé 🚀\n"
    enc = tokens.encoding("o200k_base")
    assert tokens.count_tokens(text) == len(enc.encode(text, disallowed_special=()))
    assert enc.decode(enc.encode_ordinary(text)) == text
    # Special-token text counts as the plain text it is, rather than raising.
    assert tokens.count_tokens("<|endoftext|>") > 1
    assert tokens.count_many(["a b c", "hello world"]) == [3, 2]


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown encoding"):
        tokens.encoding("p50k_base")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown encoding"):
        tokens.counter("p50k_base")  # type: ignore[arg-type]


def _tiktoken(text: str, name: tokens.EncodingName) -> int:
    return len(tokens.encoding(name).encode_ordinary(text))


HARD = [
    "",
    "\ud800",  # lone surrogates: tiktoken replaces them before encoding
    "a\udfffb \ud83d",
    "<|endoftext|><|fim_prefix|>",
    "   \n\n  x  \t\r\n",  # whitespace before a non-space: tiktoken's look-ahead
    " " * 1000 + "x",
    "1234567890" * 50,
    "'S'LL'Re 'd ǅǅ İıſ ß",
    "\u0301\u200d\u2028\u3000\u00a0\x0b\x0c",
    "🚀🙂漢字" * 40,
    "A" * 5000,
    "QUJDREVGR0g=" * 800,  # a long base64 run, one pre-tokenizer piece
]


@pytest.mark.parametrize("name", tokens.ENCODINGS)
def test_the_counter_gives_tiktoken_s_counts(name: tokens.EncodingName) -> None:
    """bpe-openai's tokenizer against tiktoken's encoder, text by text: every file of this repository, and text
    chosen where the two could part (look-ahead whitespace, surrogates, special-token text, case-folded
    contractions, long runs)."""
    count = tokens.counter(name)
    texts = [*repository_texts(), *HARD]
    assert [count(text) for text in texts] == [_tiktoken(text, name) for text in texts]
    assert tokens.counting_engine().startswith("bpe-openai-")


_ANY_TEXT = st.text(st.characters(exclude_categories=()) | st.sampled_from(list(" \t\r\n'sStT0/\ud800")), max_size=80)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_ANY_TEXT)
def test_the_counter_gives_tiktoken_s_counts_on_generated_text(text: str) -> None:
    for name in tokens.ENCODINGS:
        assert tokens.counter(name)(text) == _tiktoken(text, name)


def test_tiktoken_counts_where_bpe_openai_s_tokenizer_cannot_be_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens.counter.cache_clear()
    tokens.counting_engine.cache_clear()
    monkeypatch.setattr(tokens, "_rust_tokenizers", lambda: None)
    try:
        assert tokens.counting_engine().startswith("tiktoken-")
        texts = ["hello world", "a\ud800b", *HARD[3:6]]
        assert [tokens.counter("cl100k_base")(text) for text in texts] == [
            _tiktoken(text, "cl100k_base") for text in texts
        ]
    finally:
        monkeypatch.undo()
        tokens.counter.cache_clear()
        tokens.counting_engine.cache_clear()
    assert tokens.counting_engine().startswith("bpe-openai-")


def test_bpe_openai_s_tokenizer_loads_without_its_package_and_alongside_it() -> None:
    """Its extension module is loaded by itself (the package's ``__init__`` parses its vocabularies in Python: 0.4
    s); a later import of the package finds that module and works."""
    code = """
import sys
from tandem.core import tokens
print(tokens.count_tokens("hello world"), "bpe_openai.compat" in sys.modules, "bpe_openai._bindings" in sys.modules)
import bpe_openai
print(len(bpe_openai.get_encoding("o200k_base").encode("hello world")), tokens.count_tokens("hello there"))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TANDEM_RESULT_CACHE": "off"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "False", "True", "2", "2"]


def test_a_tampered_vocabulary_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tokens._bundled("https://example/o200k_base.tiktoken")
    data = gzip.decompress(real.read_bytes()).replace(b" 0\n", b" 1\n", 1)
    fake = tmp_path / "o200k_base.tiktoken.gz"
    fake.write_bytes(gzip.compress(data))
    monkeypatch.setattr(tokens, "_bundled", lambda url: fake)
    with pytest.raises(tokens.VocabularyError, match="sha256"):
        tokens._load_bundled_bpe(
            "https://x/o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
        )


def test_counting_works_with_the_network_unreachable(tmp_path: Path) -> None:
    """With every proxy pointing at a closed port and an empty tiktoken cache, a plain tiktoken.get_encoding fails
    but Tandem's count succeeds."""
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(tmp_path),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    plain = subprocess.run(
        [sys.executable, "-c", "import tiktoken; tiktoken.get_encoding('o200k_base')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.returncode != 0
    ours = subprocess.run(
        [sys.executable, "-c", "from tandem.core.tokens import count_tokens; print(count_tokens('hello world'))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.strip() == "2"
    assert list(tmp_path.iterdir()) == []


def test_threads_asking_for_an_encoder_at_once_build_one(tmp_path: Path) -> None:
    """A server's warm-up and a first call may both ask while the encoder is being built: one is built, both get it."""
    code = """
import threading
import tiktoken
from tandem.core import tokens
made = []
real = tiktoken.Encoding
class Counted(real):
    def __init__(self, *args, **kwargs):
        made.append(1)
        super().__init__(*args, **kwargs)
tokens.tiktoken.Encoding = Counted
got = []
ready = threading.Barrier(4)
def ask():
    ready.wait()
    got.append(tokens.encoding("cl100k_base"))
threads = [threading.Thread(target=ask) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(made), len({id(e) for e in got}), got[0].encode("hello world") == [15339, 1917])
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1", "True"]


WORKER_COUNTS = """
import json, os, sys
from tandem.core import tokens, worker_processes
from tests.exact_tokens import repository_texts

if __name__ == "__main__":
    worker_processes.preload(tokens.PREPARED)
    worker_processes.start(2)
    texts = [*repository_texts(), "<|endoftext|> and\\r\\n\\x0c more", ""]
    counted = tokens.count_many(texts)
    cl100k = tokens.count_many(texts[:5], "cl100k_base")  # the workers have no cl100k encoder: counted here
    built_here = sorted(tokens._counting_here)
    exact = [len(tokens.encoding().encode_ordinary(text)) for text in texts]
    exact_cl100k = [len(tokens.encoding("cl100k_base").encode_ordinary(text)) for text in texts[:5]]
    print(json.dumps([built_here, counted == exact, cl100k == exact_cl100k, len(texts)]))
    worker_processes.shutdown(wait=True)
"""


def test_worker_processes_count_where_they_run_with_the_encoder_built(tmp_path: Path) -> None:
    """With workers whose fork server built the encoder, counting happens in them (this process builds none)
    and the counts are tiktoken's; an encoding they lack is counted here."""
    script = tmp_path / "counts.py"
    script.write_text(WORKER_COUNTS)
    env = {**os.environ, "TANDEM_RESULT_CACHE": "off", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    built_here, same, same_cl100k, texts = json.loads(done.stdout.splitlines()[-1])
    assert built_here == ["cl100k_base"]  # o200k_base counted in the workers only, until the check built it
    assert same and same_cl100k and texts > 300
