"""Resolving a manifest's file paths safely inside its data root."""

from __future__ import annotations

import errno
import os
import stat
import sys
from functools import lru_cache
from pathlib import Path

#: How a checked file is opened: never through a symlink, never blocking (a FIFO put in
#: its place would wait forever), never inherited by a child process.
OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


class PathRejected(Exception):
    """A path cell that cannot be used; the message is the per-row reason."""


@lru_cache(maxsize=65536)
def _real_folder(folder: str) -> str:
    # Most cells of a manifest share a handful of folders: resolving each folder once
    # (one lstat per component) instead of once per file makes resolving 10x cheaper.
    return os.path.realpath(folder)


def resolve_in_root(cell: str, root: Path) -> Path:
    """Resolve ``cell`` against ``root``; refuse anything that lands outside it.

    Symlinks are followed before the check, so a link pointing out of the root is refused
    like ``../`` or an absolute path elsewhere.
    """
    return Path(resolve_file(cell, root)[0])


def resolve_file(cell: str, root: Path) -> tuple[str, os.stat_result]:
    """``resolve_in_root``, as a string, with the file's stat (one stat call per file).

    Whatever a cell holds (a NUL byte, characters the file system cannot encode, a name
    longer than it allows) is a PathRejected, never another exception.
    """
    if "\0" in cell:
        raise PathRejected(f"path {cell!r} holds a NUL byte")
    try:
        return _resolve(cell, root)
    except (OSError, ValueError) as exc:  # ValueError: UnicodeEncodeError and the like
        raise PathRejected(f"path {cell[:200]!r} cannot be used ({type(exc).__name__})") from None


def _resolve(cell: str, root: Path) -> tuple[str, os.stat_result]:
    real_root = _real_folder(str(root))
    raw = os.path.expanduser(cell) if cell.startswith("~") else cell
    folder, name = os.path.split(os.path.join(real_root, raw))
    found: os.stat_result | None = None
    if name in ("", ".", ".."):
        path = os.path.realpath(os.path.join(folder, name))
    else:
        path = os.path.join(_real_folder(folder), name)
        try:
            found = os.lstat(path)
            if stat.S_ISLNK(found.st_mode):
                path, found = os.path.realpath(path), None
        except OSError:
            pass  # does not exist: reported below, after the root check
    if not _inside(path, real_root):
        raise PathRejected(f"path {cell!r} is outside the data folder {real_root}")
    try:
        found = found or os.stat(path)
    except OSError:
        raise PathRejected(_not_found(cell, real_root)) from None
    if not stat.S_ISREG(found.st_mode):
        raise PathRejected(f"not a regular file: {cell}")
    return path, found


def _not_found(cell: str, real_root: str) -> str:
    """The reason for a missing file, and the likely cause when a near spelling of it
    exists (Windows separators, another Unicode form). It names no absolute path: the
    reason is part of the artifact, the same bytes wherever the data folder lies."""
    import unicodedata

    why = f"file not found: {cell} (in the data folder)"
    if "\\" in cell and os.path.exists(os.path.join(real_root, cell.replace("\\", "/"))):
        return why + "; the cell uses \\ between folders: write / instead"
    for form in ("NFC", "NFD"):
        other = unicodedata.normalize(form, cell)
        if other != cell and os.path.exists(os.path.join(real_root, other)):
            return why + (
                f"; the name exists in Unicode form {form}: write the manifest's paths "
                "and the file names in one form"
            )
    folder, name = os.path.split(cell)
    same = _names_by_case(os.path.join(real_root, folder)).get(name.lower())
    if same:  # on a case-sensitive file system, Photo.PNG is not photo.png
        return why + f"; {os.path.join(folder, same)} exists: names are case-sensitive"
    return why


@lru_cache(maxsize=64)
def _names_by_case(folder: str, limit: int = 10_000) -> dict[str, str]:
    """A folder's names by their lower case, read once per run (a manifest whose files
    are all missing asks for the same folder each row); none past ``limit`` entries."""
    names: dict[str, str] = {}
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= limit:
                    return {}
                names.setdefault(entry.name.lower(), entry.name)
    except (OSError, ValueError):
        return {}
    return names


def _inside(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root.rstrip(os.sep) + os.sep)


def open_inside(path: str, root: Path) -> int:
    """Open ``path``, which ``resolve_file`` found inside ``root``, refusing whatever it
    has become since: a symlink (never followed), a FIFO or device, or a file that now lies
    outside the root because a folder on the way was swapped for a link. Returns the
    descriptor: hash and decode from it (``reopen_path``), not from the name again.
    """
    real_root = _real_folder(str(root))
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathRejected(f"{path} became a symbolic link after it was checked") from None
        raise PathRejected(f"cannot open file: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PathRejected(f"{path} is no longer a regular file")
        where = opened_path(fd)
        if where is not None and not _inside(where, real_root):
            raise PathRejected(f"{path} now leads outside the data folder {real_root}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def opened_path(fd: int) -> str | None:
    """The real path of the file open as ``fd``, where the system tells it."""
    if sys.platform.startswith("linux"):
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
    if sys.platform == "darwin":
        import fcntl

        try:
            raw = fcntl.fcntl(fd, 50, bytes(1024))  # F_GETPATH
        except OSError:
            return None
        return os.fsdecode(raw.split(b"\0", 1)[0])
    return None


def reopen_path(fd: int) -> str:
    """A path that opens the very file ``fd`` is open on (for decoders that take a path),
    whatever has happened to its name since."""
    if os.path.isdir("/proc/self/fd"):
        return f"/proc/self/fd/{fd}"
    return f"/dev/fd/{fd}"
