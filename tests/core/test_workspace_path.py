"""The confinement function against attack inputs, and the opens and writes that stay inside the root."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.core import PathRefused, open_in_workspace, workspace_entry, workspace_path, write_atomic
from tandem.core.workspace_path import is_inside, real_workspace_root


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace ``ws`` with a sibling ``ws_evil`` and an ``outside`` directory holding a secret."""
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "~weird.txt").write_text("tilde\n")
    (root / "..foo").write_text("dots\n")
    (root / "a..b").write_text("dots\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (tmp_path / "ws_evil").mkdir()
    (tmp_path / "ws_evil" / "x").write_text("evil\n")
    (root / "gateway").symlink_to(outside)  # a directory symlink leading out
    (root / "passwd").symlink_to("/etc/passwd")
    (root / "inner").symlink_to(root / "src")  # a symlink that stays inside
    (root / "chain1").symlink_to("chain2")
    (root / "chain2").symlink_to(outside / "secret.txt")
    (root / "dangling").symlink_to(outside / "new.txt")
    (root / "loop").symlink_to("loop")
    return root, outside


@pytest.mark.parametrize(
    "path",
    [
        "../outside/secret.txt",
        "src/../../outside/secret.txt",
        "src/pkg/../../../outside",
        "/etc/passwd",
        "passwd",
        "gateway/secret.txt",
        "gateway/new-file.txt",
        "gateway",
        "chain1",
        "dangling",
        "inner/../../outside/secret.txt",
        "../ws_evil/x",
    ],
)
def test_escapes_are_refused_without_revealing_where(tree: tuple[Path, Path], path: str) -> None:
    root, outside = tree
    with pytest.raises(PathRefused) as refused:
        workspace_path(root, path)
    assert "outside the workspace" in str(refused.value)
    assert str(outside) not in str(refused.value) and "/etc" not in str(refused.value).replace(path, "")


def test_prefix_sibling_is_not_inside(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    sibling = str(root) + "_evil/x"
    with pytest.raises(PathRefused):
        workspace_path(root, sibling)
    assert not is_inside(real_workspace_root(root.parent / "ws_evil"), real_workspace_root(root))


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("src/\x00/etc/passwd", "NUL byte"),
        ("..\\..\\outside\\secret.txt", "backslash"),
        ("C:\\Windows\\system.ini", "backslash"),
        ("C:secret.txt", "drive letter"),
        ("//server/share/file", "UNC"),
        ("~", "home directory"),
        ("~/.ssh/id_rsa", "home directory"),
        ("~root/.ssh/id_rsa", "home directory"),
    ],
)
def test_foreign_forms_are_refused(tree: tuple[Path, Path], path: str, reason: str) -> None:
    root, _ = tree
    with pytest.raises(PathRefused, match=reason):
        workspace_path(root, path)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("~weird.txt", "~weird.txt"),
        ("..foo", "..foo"),
        ("a..b", "a..b"),
        ("src/pkg/mod.py", "src/pkg/mod.py"),
        ("./src//pkg/./mod.py", "src/pkg/mod.py"),
        ("inner/pkg/mod.py", "src/pkg/mod.py"),
        ("src/new/deeper.txt", "src/new/deeper.txt"),
        ("", "."),
        (".", "."),
    ],
)
def test_names_that_must_work(tree: tuple[Path, Path], path: str, expected: str) -> None:
    root, _ = tree
    resolved = workspace_path(root, path)
    assert resolved == real_workspace_root(root) / expected if expected != "." else real_workspace_root(root)


def test_absolute_path_inside_the_root_is_accepted(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert workspace_path(root, str(root / "src" / "pkg" / "mod.py")).read_text() == "x = 1\n"


def test_relative_paths_ignore_the_process_directory(tree: tuple[Path, Path], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root, outside = tree
    monkeypatch.chdir(outside)
    assert workspace_path(root, "secret.txt") == real_workspace_root(root) / "secret.txt"


def test_narrower_roots_narrow(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert workspace_path(root, "src/pkg/mod.py", within=[root / "src"]).name == "mod.py"
    with pytest.raises(PathRefused, match="roots this client allows"):
        workspace_path(root, "~weird.txt", within=[root / "src"])


@pytest.mark.parametrize("path", ["loop", "loop/x", "loop/../gateway", "src/../loop/../gateway/secret.txt"])
def test_symlink_loops_are_refused(tree: tuple[Path, Path], path: str) -> None:
    root, _ = tree
    with pytest.raises(PathRefused, match="symlink loop"):
        workspace_path(root, path)


@pytest.mark.parametrize("path", ["missing/../gateway/secret.txt", "missing/deeper/../../passwd", "new/../chain1"])
def test_a_missing_directory_does_not_stop_symlink_checks(tree: tuple[Path, Path], path: str) -> None:
    root, _ = tree
    with pytest.raises(PathRefused, match="outside the workspace"):
        workspace_path(root, path)


def test_write_is_atomic_and_keeps_the_mode(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    target = root / "run.sh"
    target.write_text("old\n")
    target.chmod(0o750)
    existed = write_atomic(root, workspace_path(root, "run.sh"), b"new\n")
    assert existed and target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert not [p for p in root.iterdir() if "tandem-tmp" in p.name]


def test_write_creates_parents_only_when_asked(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    path = workspace_path(root, "made/up/dirs/file.txt")
    with pytest.raises(PathRefused, match="does not exist"):
        write_atomic(root, path, b"x")
    assert write_atomic(root, path, b"x", create_dirs=True) is False
    assert (root / "made" / "up" / "dirs" / "file.txt").read_bytes() == b"x"


def test_write_through_a_symlink_inside_replaces_its_target(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    path = workspace_path(root, "inner/pkg/mod.py")
    write_atomic(root, path, b"y = 2\n")
    assert (root / "src" / "pkg" / "mod.py").read_text() == "y = 2\n"
    assert (root / "inner").is_symlink()


def test_directory_swapped_for_a_symlink_after_the_check_is_not_followed(tree: tuple[Path, Path]) -> None:
    """TOCTOU: the path is checked, then its directory becomes a symlink to the outside before the write."""
    root, outside = tree
    (root / "build").mkdir()
    checked = workspace_path(root, "build/secret.txt")
    (root / "build").rmdir()
    (root / "build").symlink_to(outside)
    with pytest.raises(PathRefused, match=r"symlink|not a directory"):
        write_atomic(root, checked, b"pwned\n")
    with pytest.raises(PathRefused):
        open_in_workspace(root, checked)
    assert (outside / "secret.txt").read_text() == "secret\n"


def test_file_swapped_for_a_symlink_after_the_check_is_not_followed(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    (root / "notes.txt").write_text("mine\n")
    checked = workspace_path(root, "notes.txt")
    (root / "notes.txt").unlink()
    (root / "notes.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(PathRefused):
        os.close(open_in_workspace(root, checked))
    with pytest.raises(PathRefused, match="not a regular file"):
        write_atomic(root, checked, b"pwned\n")
    assert (outside / "secret.txt").read_text() == "secret\n"


_COMPONENTS = st.sampled_from(
    [
        "..",
        ".",
        "",
        "src",
        "pkg",
        "gateway",
        "passwd",
        "inner",
        "chain1",
        "dangling",
        "loop",
        "~",
        "x..y",
        "new",
        "gone",
    ]
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(parts=st.lists(_COMPONENTS, min_size=1, max_size=8), absolute=st.booleans())
def test_no_generated_path_resolves_outside(tree: tuple[Path, Path], parts: list[str], absolute: bool) -> None:
    root, _ = tree
    path = "/".join(parts)
    if absolute:
        path = str(root) + "/" + path
    try:
        resolved = workspace_path(root, path)
    except PathRefused:
        return
    assert ".." not in resolved.parts
    real = Path(os.path.realpath(resolved))
    assert is_inside(real, real_workspace_root(root))
    if os.path.lexists(resolved):
        assert not os.path.islink(resolved)  # fully resolved: nothing left for a later use to follow


def test_an_entry_is_the_link_itself_in_a_confined_directory(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    link = workspace_entry(root, "gateway")
    assert link == real_workspace_root(root) / "gateway" and link.is_symlink()
    assert workspace_entry(root, "src/pkg/") == real_workspace_root(root) / "src" / "pkg"
    for path in ("gateway/secret.txt", "../outside", "passwd/x", "src/\x00"):
        with pytest.raises(PathRefused):
            workspace_entry(root, path)
