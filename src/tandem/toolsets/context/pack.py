"""Packing a codebase into one text a model can read: the files ``.gitignore`` (and sensible defaults) leave,
binaries skipped, the directory tree first, then every file, in XML, Markdown, plain text or JSON, with exact
token counts per file and in total (``tandem.core.tokens``).

The pure part lives here (collecting what was read, rendering, counting); the tool in ``toolset.py`` lists the
files through the command runner and reads them through the confinement function.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

from tandem.core.tokens import DEFAULT_ENCODING, EncodingName, count_joined, count_many, count_tokens
from tandem.toolsets.context.store import lines_of

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
    "pylock.toml",
    "pylock.*.toml",
    "pdm.lock",
    "Podfile.lock",
    "pubspec.lock",
    "mix.lock",
    "flake.lock",
    "deno.lock",
    "bun.lock",
    "npm-shrinkwrap.json",
    "packages.lock.json",
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
    span: str = ""
    """``"41-80"`` for one piece of a file split by lines to fit a token budget."""
    kind: Literal["file", "git_diff", "git_log"] = "file"
    """A workspace file, or one of the git sections after the files."""
    lines: tuple[int, ...] | None = None
    """For a compressed file, the original line number of each line of ``text`` (line numbers show these)."""

    @property
    def shown(self) -> str:
        return f"{self.path} (lines {self.span})" if self.span else self.path


@dataclass(frozen=True, slots=True)
class Part:
    text: str
    tokens: int
    files: list[str]


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
    sections: list[PackedFile] = field(default_factory=list)
    """The git diff and log, when asked for: after the files, not in the tree or the file counts."""
    parts: list[Part] = field(default_factory=list)
    """With a token budget: the output split at file boundaries (a file too large alone is split by lines)."""
    compressed: bool = False
    """Whether source files were cut to their skeleton (the header says so)."""

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


def _header(pack: Pack, part: tuple[int, int] | None) -> str:
    if part is not None and part[0] > 1:
        return f"Part {part[0]} of {part[1]} of the files packed from {pack.root} (the directory structure: part 1)."
    contents = (
        "contents, compressed: source files keep imports, signatures, type declarations, comments and docstrings, "
        "and each function body is dropped and marked { /* … */ }, ... or # …"
        if pack.compressed
        else "full contents"
    )
    text = (
        f"This is a packed representation of {len(pack.files)} files from {pack.root}, produced by Tandem for an AI "
        f"model to read: the directory structure first, then each file's path and {contents}. Files ignored by "
        ".gitignore or Tandem's default ignores, and binary files, are not included."
    )
    return text + (f" Part 1 of {part[1]}." if part is not None else "")


def render(pack: Pack, files: list[PackedFile] | None = None, part: tuple[int, int] | None = None) -> str:
    """The pack as text; ``files`` and ``part`` (number, of) render one part of a split pack."""
    return "".join(render_chunks(pack, files, part))


def render_chunks(pack: Pack, files: list[PackedFile] | None = None, part: tuple[int, int] | None = None) -> list[str]:
    """``render``'s text in chunks: what comes before the files, then each file with its markup (so a file's chunk
    is the same text in every pack that holds it, and its count is remembered), then what follows them."""
    everything = [*pack.files, *pack.sections] if files is None else files
    chosen = [f for f in everything if f.kind == "file"]
    sections = [f for f in everything if f.kind != "file"]
    with_tree = part is None or part[0] == 1
    tree = directory_tree(f.path for f in pack.files) if with_tree else ""
    if pack.style == "json":
        data: dict[str, object] = {"summary": _header(pack, part)}
        if with_tree:
            data["directoryStructure"] = tree
        data["files"] = {f.shown: f.text for f in chosen}
        for section in sections:
            key = "gitDiff" if section.kind == "git_diff" else "gitLog"
            data[key] = str(data.get(key, "")) + section.text
        return [json.dumps(data, ensure_ascii=False, indent=2) + "\n"]
    parts: list[str] = [_header(pack, part), ""]
    starts: list[int] = []
    """Where in ``parts`` each file's lines begin, and where the lines after the last file begin."""
    if pack.style == "xml":
        if with_tree:
            parts += ["<directory_structure>", tree, "</directory_structure>", ""]
        parts.append("<files>")
        for f in chosen:
            starts.append(len(parts))
            span = f' lines="{f.span}"' if f.span else ""
            parts += [f'<file path="{_attribute(f.path)}"{span}>', f.text.rstrip("\n"), "</file>", ""]
        starts.append(len(parts))
        parts.append("</files>")
        for section in sections:
            span = f' lines="{section.span}"' if section.span else ""
            parts += ["", f"<{section.kind}{span}>", section.text.rstrip("\n"), f"</{section.kind}>"]
    elif pack.style == "markdown":
        if with_tree:
            parts += ["# Directory Structure", "```", tree, "```", ""]
        parts += ["# Files", ""]
        for f in chosen:
            starts.append(len(parts))
            fence = _fence(f.text)
            language = _FENCE_LANGUAGES.get(PurePosixPath(f.path).suffix.lower(), "")
            parts += [f"## File: {f.shown}", f"{fence}{language}", f.text.rstrip("\n"), fence, ""]
        starts.append(len(parts))
        for section in sections:
            fence = _fence(section.text)
            language = "diff" if section.kind == "git_diff" else ""
            parts += [f"# {_TITLES[section.kind]}{_lines(section)}", f"{fence}{language}", section.text.rstrip("\n")]
            parts += [fence, ""]
    else:
        bar = "=" * 64
        if with_tree:
            parts += [bar, "Directory Structure", bar, tree, ""]
        for f in chosen:
            starts.append(len(parts))
            parts += [bar, f"File: {f.shown}", bar, f.text.rstrip("\n"), ""]
        starts.append(len(parts))
        for section in sections:
            parts += [bar, f"{_TITLES[section.kind]}{_lines(section)}", bar, section.text.rstrip("\n"), ""]
    # "\n".join of every line, as chunks: each range of lines joined, and the newline that follows it (a range
    # after the last file is empty when nothing follows the files).
    bounds = [0, *starts, len(parts)]
    return ["\n".join(parts[a:b]) + "\n" for a, b in itertools.pairwise(bounds) if b > a]


_TITLES = {"git_diff": "Git diff (working tree against HEAD)", "git_log": "Git log (newest first)"}


def _lines(piece: PackedFile) -> str:
    return f" (lines {piece.span})" if piece.span else ""


def _attribute(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def numbered(text: str, numbers: tuple[int, ...] | None = None) -> str:
    """``text`` with each line prefixed by its number, right-aligned (``  7: ...``); ``numbers``, given for a
    compressed file, are the original number of each of its lines, so they point into the real file."""
    lines = lines_of(text)  # as the stored pack numbers them: a form feed or a carriage return stays in its line
    if numbers is None:
        numbers = tuple(range(1, len(lines) + 1))
    numbers = numbers[: len(lines)]
    width = len(str(max(numbers, default=0)))
    return "\n".join(f"{n:>{width}}: {line}" for n, line in zip(numbers, lines, strict=True)) + ("\n" if lines else "")


def build(
    root: str,
    files: list[PackedFile],
    *,
    style: Style = "xml",
    encoding: EncodingName = DEFAULT_ENCODING,
    skipped: list[dict[str, str]] | None = None,
    line_numbers: bool = False,
    token_budget: int | None = None,
    sections: list[PackedFile] | None = None,
    compressed: bool = False,
) -> Pack:
    """Count each file's tokens, render the pack and count its total (the figure that matters: what is sent);
    with ``token_budget``, also split it into parts that each fit."""
    if line_numbers:
        files = [PackedFile(f.path, numbered(f.text, f.lines)) for f in files]
    counts = count_many([f.text for f in files], encoding) if files else []
    counted = [PackedFile(f.path, f.text, n) for f, n in zip(files, counts, strict=True)]
    pack = Pack(root, style, encoding, counted, list(skipped or []), compressed=compressed)
    extra = list(sections or [])
    pack.sections = [
        PackedFile(x.path, x.text, n, kind=x.kind)
        for x, n in zip(extra, count_many([x.text for x in extra], encoding) if extra else [], strict=True)
    ]
    chunks = render_chunks(pack)
    pack.output = "".join(chunks)
    pack.total_tokens = count_joined(chunks, encoding)
    if token_budget is not None:
        pack.parts = split(pack, token_budget)
    return pack


_WRAPPER_TOKENS = 24
"""A file's share of the markup around it (path line, fence or tag, blank line), generously; every part is then
counted exactly and split again if it is over."""


def split(pack: Pack, budget: int) -> list[Part]:
    """The pack in parts of at most ``budget`` tokens each, counted exactly; a part holding a single line longer
    than the budget is the one part that can be over it."""
    overhead = count_tokens(render(pack, [], (1, 2)), pack.encoding) + _WRAPPER_TOKENS
    room = max(budget - overhead - _WRAPPER_TOKENS, 1)
    groups: list[list[PackedFile]] = []
    current: list[PackedFile] = []
    cost = overhead
    later_header = count_tokens(render(pack, [], (2, 2)), pack.encoding)
    for f in [*pack.files, *pack.sections]:
        # A file too large for any part is cut by lines, its first piece filling what is left of this part.
        left = budget - cost - _WRAPPER_TOKENS
        pieces = [f] if f.tokens <= room else _by_lines(f, left if left >= room // 4 else room, room, pack.encoding)
        for piece in pieces:
            if current and cost + piece.tokens + _WRAPPER_TOKENS > budget:
                groups.append(current)
                current, cost = [], later_header
            current.append(piece)
            cost += piece.tokens + _WRAPPER_TOKENS
    groups.append(current)
    while True:  # exact counts; a group over the budget is halved until every one fits
        total = len(groups)
        texts = [render(pack, g, (n, total)) for n, g in enumerate(groups, 1)]
        tokens = count_many(texts, pack.encoding)
        over = next((i for i, t in enumerate(tokens) if t > budget and len(groups[i]) > 1), None)
        if over is None:
            return [Part(t, n, [f.shown for f in g]) for t, n, g in zip(texts, tokens, groups, strict=True)]
        half = len(groups[over]) // 2
        groups[over : over + 1] = [groups[over][:half], groups[over][half:]]


def _by_lines(f: PackedFile, first: int, room: int, encoding: EncodingName) -> list[PackedFile]:
    """``f`` in pieces of whole lines: the first of about ``first`` tokens, the others of about ``room``."""
    lines = f.text.splitlines(keepends=True)
    counts = count_many(lines, encoding, keep=False)
    chunks: list[tuple[int, int]] = []
    start, used, limit = 0, 0, first
    for i, n in enumerate(counts):
        if i > start and used + n > limit:
            chunks.append((start, i))
            start, used, limit = i, 0, room
        used += n
    chunks.append((start, len(lines)))
    out = []
    for a, b in chunks:
        text = "".join(lines[a:b])
        out.append(PackedFile(f.path, text, count_tokens(text, encoding), f"{a + 1}-{b}", f.kind))
    return out
