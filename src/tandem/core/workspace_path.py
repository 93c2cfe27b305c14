"""Workspace confinement: the one function every path a tool takes goes through, and the opens and writes that
stay inside the root even when the tree changes under them.

``workspace_path`` turns what a client sent into a real, absolute path inside the workspace root, or refuses it:

- relative paths resolve against the root, never the process's working directory;
- symlinks are resolved (for a file that does not exist yet, through its existing parents) and the result must lie
  inside the root, compared component by component, so ``/ws_evil`` is not inside ``/ws``;
- NUL bytes, backslashes (Windows separators), drive letters, UNC paths and home-directory forms (``~``,
  ``~user/``) are refused; a file literally named ``~notes.txt`` is fine, and so are ``..foo`` and ``a..b``;
- a client's roots may narrow the root, never widen it;
- error messages show what the client sent or paths relative to the root, never where a symlink points outside.

A path checked now may be swapped for a symlink before it is used. ``open_in_workspace`` and ``write_atomic``
therefore walk down from the root one directory at a time with ``O_NOFOLLOW``, so a component that became a
symlink after the check fails the open instead of being followed.
"""

from __future__ import annotations

import errno
import functools
import os
import pwd
import re
import secrets
import shutil
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from tandem.core.errors import ToolError

_DRIVE = re.compile(r"^[A-Za-z]:")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW


class PathRefused(ToolError):
    """A path that is not allowed, or that cannot be used: the message says which and why."""


def workspace_path(root: Path, path: str, *, within: Sequence[Path] = ()) -> Path:
    """The real, absolute path that ``path`` names inside the workspace ``root``; raises ``PathRefused``.

    ``within``, when given, are narrower roots (a client's roots): the path must lie inside one of them too.
    """
    shown = _checked(path)
    real_root = real_workspace_root(root)
    return _confined(root, _resolve(real_root, path, shown), shown, within)


def workspace_entry(root: Path, path: str, *, within: Sequence[Path] = ()) -> Path:
    """The directory entry ``path`` names, in its real, confined parent directory: a symlink stays itself.

    For operations on the entry rather than on what it leads to (delete, move, inspect a link): the last
    component is not resolved, everything above it is, exactly as ``workspace_path`` does.
    """
    shown = _checked(path)
    head, _, name = path.rstrip("/").rpartition("/")
    if name in ("", ".", ".."):
        return workspace_path(root, path, within=within)
    real_root = real_workspace_root(root)
    parent = _resolve(real_root, head if head or not path.startswith("/") else "/", shown)
    return _confined(root, parent / name, shown, within)


def _checked(path: str) -> str:
    """Refuse the forms that never name a workspace path; return ``path`` as shown in messages."""
    if not isinstance(path, str):
        raise PathRefused(f"a path must be a string, not {type(path).__name__}")
    shown = _shown(path)
    if "\x00" in path:
        raise PathRefused(f"path {shown} contains a NUL byte")
    if "\\" in path:
        raise PathRefused(f"path {shown} contains a backslash; use '/' to separate directories")
    if _DRIVE.match(path):
        raise PathRefused(f"path {shown} has a drive letter; give a path inside the workspace")
    if path.startswith("//"):
        raise PathRefused(f"path {shown} is a network (UNC) path; give a path inside the workspace")
    first, _, rest = path.partition("/")
    if first == "~" or (first.startswith("~") and rest and _is_user(first[1:])):
        raise PathRefused(f"path {shown} points into a home directory; give a path inside the workspace")
    return shown


def _confined(root: Path, resolved: Path, shown: str, within: Sequence[Path]) -> Path:
    real_root = real_workspace_root(root)
    if not is_inside(resolved, real_root):
        raise PathRefused(f"path {shown} is outside the workspace")
    if within and not any(is_inside(resolved, real_workspace_root(r)) for r in within):
        raise PathRefused(f"path {shown} is outside the roots this client allows")
    return resolved


_MAX_SYMLINKS = 40
"""Symlinks followed while resolving one path before it counts as a loop (Linux's own limit)."""


def _resolve(base: Path, path: str, shown: str) -> Path:
    """``path`` (relative to ``base``, or absolute) with every symlink resolved, the way the kernel walks it.

    Unlike ``os.path.realpath``, which gives up at a symlink loop and returns the rest of the path unresolved
    (``loop/../link`` comes back as ``link``, a symlink that may lead anywhere), a loop is refused here.
    Components that do not exist yet are kept as written; a '..' after one just drops it (what follows is still
    checked for symlinks).
    """
    current = Path("/") if path.startswith("/") else base
    pending = [part for part in path.split("/") if part not in ("", ".")]
    pending.reverse()
    hops = 0
    while pending:
        part = pending.pop()
        if part == "..":
            current = current.parent
            continue
        candidate = current / part
        if os.path.islink(candidate):
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise PathRefused(f"path {shown} runs into a symlink loop")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = Path("/")
            pending.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
            continue
        current = candidate
    return current


@functools.lru_cache(maxsize=64)
def real_workspace_root(root: Path) -> Path:
    """The workspace root with its own symlinks resolved: what confined paths are compared against."""
    return Path(os.path.realpath(root))


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or below it, comparing whole components (both must be real paths)."""
    return path == root or path.is_relative_to(root)


def relative_display(root: Path, path: Path) -> str:
    """``path`` as the client should see it: relative to the root, with '/' separators ('.' for the root)."""
    relative = path.relative_to(real_workspace_root(root))
    return relative.as_posix() if relative.parts else "."


def _shown(path: str) -> str:
    return repr(path if len(path) <= 200 else path[:200] + "...")


def _is_user(name: str) -> bool:
    if not name:
        return True  # "~/..."
    try:
        pwd.getpwnam(name)
    except (KeyError, UnicodeEncodeError):
        return False
    return True


@contextmanager
def _parent_fd(root: Path, path: Path, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """An open descriptor of ``path``'s parent reached from the root without following symlinks, and its name."""
    real_root = real_workspace_root(root)
    parts = path.relative_to(real_root).parts
    if not parts:
        raise PathRefused("the workspace root itself cannot be used here")
    fd = os.open(real_root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o777, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd, parts[-1]
    except OSError as exc:
        raise _refusal(root, path, exc) from None
    finally:
        os.close(fd)


def open_in_workspace(root: Path, path: Path, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """Open a confined path (from ``workspace_path``) without following any symlink below the root.

    Returns a file descriptor the caller closes. Directories open too (pass ``os.O_DIRECTORY``).
    """
    real_root = real_workspace_root(root)
    if path == real_root:
        return os.open(real_root, flags | os.O_CLOEXEC)
    with _parent_fd(root, path) as (parent, name):
        try:
            return os.open(name, flags | os.O_CLOEXEC | os.O_NOFOLLOW, mode, dir_fd=parent)
        except OSError as exc:
            raise _refusal(root, path, exc) from None


def write_atomic(root: Path, path: Path, data: bytes, *, create_dirs: bool = False, mode: int | None = None) -> bool:
    """Replace (or create) a confined file with ``data`` in one step: a temporary file beside it, then a rename.

    Readers see the old content or the new, never a mix; a crash leaves the old file. An existing file keeps its
    permission bits (unless ``mode`` is given); a new one gets ``mode``, else the usual ``0o666`` less the umask.
    Returns whether the file existed before.
    """
    with _parent_fd(root, path, create=create_dirs) as (parent, name):
        try:
            before = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            before = None
        if before is not None and not stat.S_ISREG(before.st_mode):
            kind = "a directory" if stat.S_ISDIR(before.st_mode) else "not a regular file"
            raise PathRefused(f"{relative_display(root, path)} is {kind}; only regular files can be written")
        if mode is None:
            mode = stat.S_IMODE(before.st_mode) if before is not None else 0o666 & ~_umask()
        temp = f".{name}.{secrets.token_hex(6)}.tandem-tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(temp, flags, 0o600, dir_fd=parent)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchmod(fd, mode)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
            os.fsync(parent)
        except OSError as exc:
            with suppress(OSError):
                os.unlink(temp, dir_fd=parent)
            raise _refusal(root, path, exc) from None
    return before is not None


def make_directories(root: Path, path: Path) -> None:
    """Create the confined directory ``path`` and its missing parents, walking down from the root without
    following symlinks (an existing directory is fine)."""
    if path == real_workspace_root(root):
        return
    with _parent_fd(root, path, create=True) as (parent, name):
        try:
            os.mkdir(name, 0o777, dir_fd=parent)
        except FileExistsError:
            if not stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                raise PathRefused(f"{relative_display(root, path)} exists and is not a directory") from None
        except OSError as exc:
            raise _refusal(root, path, exc) from None


def copy_tree_in_workspace(root: Path, source: Path, destination: Path) -> int:
    """Copy the directory ``source`` to a new ``destination``, both confined: the walk never follows a symlink
    (links are copied as links), files are read and written through confined descriptors. Returns files copied."""
    copied = 0
    source_fd = open_in_workspace(root, source, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for directory, subdirectories, files, fd in os.fwalk(dir_fd=source_fd, follow_symlinks=False):
            target = destination / directory if directory != "." else destination
            make_directories(root, target)
            for name in subdirectories:
                if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    files.append(name)  # a link to a directory is copied as a link, not walked
            for name in files:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    with _parent_fd(root, target / name) as (parent, link_name):
                        os.symlink(os.readlink(name, dir_fd=fd), link_name, dir_fd=parent)
                elif stat.S_ISREG(info.st_mode):
                    file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                    with os.fdopen(file_fd, "rb") as handle:
                        write_atomic(root, target / name, handle.read(), mode=stat.S_IMODE(info.st_mode))
                    copied += 1
    finally:
        os.close(source_fd)
    return copied


def rename_in_workspace(root: Path, source: Path, destination: Path, *, replace: bool = False) -> None:
    """Move the entry ``source`` names (a symlink is moved as a link) to ``destination``, both reached without
    following symlinks; an existing destination is replaced only with ``replace`` (never a directory)."""
    with _parent_fd(root, source) as (src_dir, src_name), _parent_fd(root, destination) as (dst_dir, dst_name):
        try:
            target = os.stat(dst_name, dir_fd=dst_dir, follow_symlinks=False)
        except FileNotFoundError:
            target = None
        if target is not None and (not replace or stat.S_ISDIR(target.st_mode)):
            raise PathRefused(f"{relative_display(root, destination)} already exists")
        try:
            os.rename(src_name, dst_name, src_dir_fd=src_dir, dst_dir_fd=dst_dir)
        except OSError as exc:
            raise _refusal(root, source, exc) from None


def remove_in_workspace(root: Path, path: Path, *, recursive: bool = False) -> None:
    """Delete the entry ``path`` names (a symlink, not its target); a directory only with ``recursive``, its tree
    removed without following any symlink in it."""
    with _parent_fd(root, path) as (parent, name):
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode):
                os.unlink(name, dir_fd=parent)
            elif not recursive:
                raise PathRefused(f"{relative_display(root, path)} is a directory; deleting it needs recursive")
            else:
                shutil.rmtree(name, dir_fd=parent)
        except OSError as exc:
            raise _refusal(root, path, exc) from None


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _refusal(root: Path, path: Path, exc: OSError) -> PathRefused:
    """An OS error as a message about the client's path, without host paths or OS internals."""
    shown = relative_display(root, path)
    if isinstance(exc, FileNotFoundError):
        return PathRefused(f"{shown} does not exist")
    if isinstance(exc, NotADirectoryError):
        return PathRefused(f"a parent of {shown} is not a directory (or changed while being opened)")
    if isinstance(exc, IsADirectoryError):
        return PathRefused(f"{shown} is a directory")
    if isinstance(exc, PermissionError):
        return PathRefused(f"permission denied: {shown}")
    if exc.errno == errno.ELOOP:  # a symlink where a real directory was checked, or a symlink loop
        return PathRefused(f"{shown} changed to a symlink while being opened, or is a symlink loop")
    return PathRefused(f"{shown}: {exc.strerror or type(exc).__name__}")
