"""Listing files through ripgrep and the command runner: complete on trees whose listing exceeds the runner's usual
output cap, cut exactly at ``max_files``, ignore rules respected."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.core import CommandPolicy, CommandRunner
from tandem.core.file_list import list_files

pytestmark = pytest.mark.anyio


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    for i in range(3000):
        (deep / f"module_with_a_long_name_{i:05d}.py").write_text("")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "x.py").write_text("")
    return tmp_path


async def test_listing_larger_than_the_output_cap_is_complete(tree: Path) -> None:
    # 3000 paths of ~200 characters is ~600 kB, three times the policy's per-stream cap below.
    runner = CommandRunner(tree, CommandPolicy(max_output_bytes=200_000))
    files, cut = await list_files(runner, [tree], globs=["*.py"])
    assert not cut
    assert len(files) == 3000
    assert all(f.name.startswith("module_with_a_long_name_") for f in files)
    assert files == sorted(files)


async def test_listing_is_cut_at_max_files(tree: Path) -> None:
    runner = CommandRunner(tree, CommandPolicy())
    files, cut = await list_files(runner, [tree], globs=["*.py"], max_files=100)
    assert cut
    assert [f.name for f in files] == [f"module_with_a_long_name_{i:05d}.py" for i in range(100)]
