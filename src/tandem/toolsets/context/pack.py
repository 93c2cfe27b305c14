"""Packing a codebase into one text a model can read: the files ``.gitignore`` (and sensible defaults) leave,
binaries skipped, the directory tree first, then every file, in XML, Markdown, plain text or JSON, with exact
token counts per file and in total (``tandem.core.tokens``).

The pure part lives here (collecting what was read, rendering, counting); the tool in ``toolset.py`` lists the
files through the command runner and reads them through the confinement function.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

from tandem.core.tokens import DEFAULT_ENCODING, EncodingName, count_many, count_tokens

Style = Literal["xml", "markdown", "plain", "json"]
STYLES: tuple[Style, ...] = ("xml", "markdown", "plain", "json")

DEFAULT_IGNORES: tuple[str, ...] = (
    # What a model gains nothing from even where .gitignore forgets it: dependencies, builds, caches, lock files,
    # minified and generated assets, and Tandem's own data.
    ".git",
    ".tandem",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    "dist",
    "build",
    "target",
    ".next",
    "coverage",
    "*.pyc",
    "*.min.js",
    "*.min.css",
    "*.map",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lockb",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "Cargo.lock",
    "Gemfile.lock",
    "composer.lock",
    "go.sum",
    ".DS_Store",
)

_FENCE_LANGUAGES = {
    ".py": "python",
    ".js": "javascript",
    ".jsx": "jsx",
    ".ts": "typescript",
    ".tsx": "tsx",
    ".rs": "rust",
    ".go": "go",
    ".java": "java",
    ".kt": "kotlin",
    ".rb": "ruby",
    ".php": "php",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".cs": "csharp",
    ".swift": "swift",
    ".dart": "dart",
    ".sol": "solidity",
    ".vue": "vue",
    ".css": "css",
    ".html": "html",
    ".sh": "bash",
    ".json": "json",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".toml": "toml",
    ".md": "markdown",
    ".sql": "sql",
}


@dataclass(frozen=True, slots=True)
class PackedFile:
    path: str
    """Relative to the workspace, with ``/`` separators."""
    text: str
    tokens: int = 0


@dataclass
class Pack:
    """What was packed: the files in order, what was left out and why, the rendered output and its counts."""

    root: str
    style: Style
    encoding: EncodingName
    files: list[PackedFile]
    skipped: list[dict[str, str]] = field(default_factory=list)
    output: str = ""
    total_tokens: int = 0

    @property
    def total_chars(self) -> int:
        return len(self.output)

    def top_files(self, count: int) -> list[dict[str, int | str]]:
        ranked = sorted(self.files, key=lambda f: (-f.tokens, f.path))[:count]
        return [{"path": f.path, "tokens": f.tokens, "chars": len(f.text)} for f in ranked]


def directory_tree(paths: Iterable[str]) -> str:
    """The paths as an indented tree, directories first and with a trailing ``/``, each level sorted by name."""
    root: dict[str, dict] = {}
    for path in paths:
        node = root
        for part in PurePosixPath(path).parts:
            node = node.setdefault(part, {})
    lines: list[str] = []

    def walk(node: dict[str, dict], depth: int) -> None:
        directories = sorted(name for name, child in node.items() if child)
        files = sorted(name for name, child in node.items() if not child)
        for name in directories:
            lines.append(f"{'  ' * depth}{name}/")
            walk(node[name], depth + 1)
        lines.extend(f"{'  ' * depth}{name}" for name in files)

    walk(root, 0)
    return "\n".join(lines)


def _fence(text: str) -> str:
    """A Markdown fence longer than any run of backticks in ``text``, so a file with fences cannot close it."""
    longest, run = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _header(pack: Pack) -> str:
    return (
        f"This is a packed representation of {len(pack.files)} files from {pack.root}, produced by Tandem for an AI "
        "model to read: the directory structure first, then each file's path and full contents. Files ignored by "
        ".gitignore or Tandem's default ignores, and binary files, are not included."
    )


def render(pack: Pack) -> str:
    tree = directory_tree(f.path for f in pack.files)
    if pack.style == "json":
        return json.dumps(
            {
                "summary": _header(pack),
                "directoryStructure": tree,
                "files": {f.path: f.text for f in pack.files},
            },
            ensure_ascii=False,
            indent=2,
        )
    parts: list[str] = []
    if pack.style == "xml":
        parts += [_header(pack), "", "<directory_structure>", tree, "</directory_structure>", "", "<files>"]
        for f in pack.files:
            parts += [f'<file path="{_attribute(f.path)}">', f.text.rstrip("\n"), "</file>", ""]
        parts.append("</files>")
    elif pack.style == "markdown":
        parts += [_header(pack), "", "# Directory Structure", "```", tree, "```", "", "# Files", ""]
        for f in pack.files:
            fence = _fence(f.text)
            language = _FENCE_LANGUAGES.get(PurePosixPath(f.path).suffix.lower(), "")
            parts += [f"## File: {f.path}", f"{fence}{language}", f.text.rstrip("\n"), fence, ""]
    else:
        bar = "=" * 64
        parts += [_header(pack), "", bar, "Directory Structure", bar, tree, ""]
        for f in pack.files:
            parts += [bar, f"File: {f.path}", bar, f.text.rstrip("\n"), ""]
    return "\n".join(parts) + "\n"


def _attribute(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def build(
    root: str,
    files: list[PackedFile],
    *,
    style: Style = "xml",
    encoding: EncodingName = DEFAULT_ENCODING,
    skipped: list[dict[str, str]] | None = None,
) -> Pack:
    """Count each file's tokens, render the pack and count its total (the figure that matters: what is sent)."""
    counts = count_many([f.text for f in files], encoding) if files else []
    counted = [PackedFile(f.path, f.text, n) for f, n in zip(files, counts, strict=True)]
    pack = Pack(root=root, style=style, encoding=encoding, files=counted, skipped=list(skipped or []))
    pack.output = render(pack)
    pack.total_tokens = count_tokens(pack.output, encoding)
    return pack
