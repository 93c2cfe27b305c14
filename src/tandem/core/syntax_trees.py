"""Tree-sitter parsers for every language ``tree-sitter-language-pack`` bundles (170+), named as the pack names
them, and the file extensions that select the common ones. The one place Tandem gets a tree-sitter parser.

The pack is pinned below 1.0: its 1.x releases download grammars from GitHub at first use, which fails on a
machine that reaches only a package index; 0.13 ships every grammar in the wheel.
"""

from __future__ import annotations

import functools
import threading
import typing
from pathlib import Path

from tree_sitter import Language, Parser
from tree_sitter_language_pack import SupportedLanguage, get_language, get_parser

from tandem.core.errors import ToolError

LANGUAGES: tuple[str, ...] = tuple(sorted(typing.get_args(SupportedLanguage)))

EXTENSIONS: dict[str, str] = {
    ".sh": "bash", ".bash": "bash", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
    ".hh": "cpp", ".cs": "csharp", ".css": "css", ".scss": "scss", ".dart": "dart", ".ex": "elixir",
    ".exs": "elixir", ".erl": "erlang", ".go": "go", ".hs": "haskell", ".hcl": "hcl", ".tf": "terraform",
    ".html": "html", ".htm": "html", ".java": "java", ".js": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".jsx": "javascript", ".json": "json", ".jl": "julia", ".kt": "kotlin", ".kts": "kotlin",
    ".lua": "lua", ".md": "markdown", ".nix": "nix", ".m": "objc", ".ml": "ocaml", ".php": "php", ".pl": "perl",
    ".ps1": "powershell", ".proto": "proto", ".py": "python", ".pyi": "python", ".r": "r", ".rb": "ruby",
    ".rs": "rust", ".scala": "scala", ".sol": "solidity", ".sql": "sql", ".svelte": "svelte", ".swift": "swift",
    ".toml": "toml", ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx", ".vue": "vue",
    ".xml": "xml", ".yaml": "yaml", ".yml": "yaml", ".zig": "zig",
}  # fmt: skip
"""File extensions and the language each selects (a file of another extension needs its language named)."""
NAMES: dict[str, str] = {"Dockerfile": "dockerfile", "Makefile": "make", "CMakeLists.txt": "cmake"}


def language_of(path: Path) -> str | None:
    """The language a file's name or extension selects, if any."""
    return NAMES.get(path.name) or EXTENSIONS.get(path.suffix.lower())


def known(language: str) -> str:
    """``language`` if tree-sitter knows it, else a ToolError that says how to find the names."""
    if language not in LANGUAGES:
        raise ToolError(f"unknown language {language!r}; tree-sitter knows {len(LANGUAGES)}, e.g. python, rust, tsx")
    return language


_threads = threading.local()


def parser(language: str) -> Parser:
    """A parser for ``language``, reused within one thread (a tree-sitter parser must not be shared between
    threads, and a worker process or thread parses many files)."""
    cached: dict[str, Parser] = _threads.__dict__.setdefault("parsers", {})
    found = cached.get(language)
    if found is None:
        found = cached[language] = get_parser(typing.cast(SupportedLanguage, known(language)))
    return found


@functools.cache
def language(name: str) -> Language:
    """The tree-sitter grammar ``name`` (for queries, and for a parser of one's own where a thread needs one)."""
    return get_language(typing.cast(SupportedLanguage, known(name)))
