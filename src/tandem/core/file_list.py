"""Listing the files under confined paths the way a developer expects: ``.gitignore`` respected (in a git
repository or not), hidden files and
git's internals left out, fast on large trees (ripgrep's ``--files``, through the command runner)."""

from __future__ import annotations

from pathlib import Path

from tandem.core.commands import CommandResult, CommandRunner, installed_program
from tandem.core.errors import ToolError
from tandem.core.workspace_path import real_workspace_root

LIST_TIMEOUT_S = 60.0
LIST_OUTPUT_BYTES = 64 * 1024 * 1024
"""The most listing output kept: far above what ``max_files`` paths take (a large tree is 1-5 MB)."""


def ripgrep() -> str:
    """The ``rg`` binary: the one installed beside this Python (the ``ripgrep`` package), else the one on PATH."""
    found = installed_program("rg")
    if found is None:
        raise ToolError("ripgrep (rg) is not installed; install Tandem's dependencies again (pip install tandem)")
    return found


async def list_files(
    runner: CommandRunner,
    paths: list[Path],
    *,
    globs: list[str] | None = None,
    include_hidden: bool = False,
    max_files: int | None = None,
) -> tuple[list[Path], bool]:
    """The files under ``paths`` (confined, real paths), sorted; and whether the list was cut at ``max_files``.

    A path that is a file is listed as it is (ignore rules apply only to what a directory walk finds).
    """
    args = ["--files", "--no-follow", "--sort", "path", "--no-require-git"]
    if include_hidden:
        # Hidden files, but not git's internals nor Tandem's own data (packs, loop state, logs) in .tandem/.
        args += ["--hidden", "--glob", "!.git", "--glob", "!.tandem"]
    for glob in globs or []:
        args += ["--glob", glob]
    lines = 0

    async def enough(stream: str, text: str) -> bool:
        # The listing is sorted, so once it holds more than max_files paths the rest would be cut anyway.
        nonlocal lines
        if max_files is None or stream != "stdout":
            return False
        lines += text.count("\n")
        return lines > max_files

    result: CommandResult = await runner.run(
        [ripgrep(), *args, "--", *(str(p) for p in paths)],
        timeout_s=LIST_TIMEOUT_S,
        max_output_bytes=LIST_OUTPUT_BYTES,
        keep_head=True,
        on_output=enough,
    )
    if result.exit_code == 2 and not result.stdout:
        raise ToolError(f"could not list the files: {result.stderr.strip()[:500]}")
    root = real_workspace_root(runner.workspace)
    files = [Path(line) for line in result.stdout.splitlines() if line]
    files = [f for f in files if f == root or f.is_relative_to(root)]
    cut = result.timed_out or result.stopped_early or result.stdout_bytes > len(result.stdout.encode())
    if max_files is not None and len(files) > max_files:
        return files[:max_files], True
    return files, cut
