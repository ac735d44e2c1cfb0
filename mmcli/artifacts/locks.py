"""Locks on artifacts: a writer holds its output's lock exclusively for a whole run; a
stage holds each input artifact's lock shared while it reads it, so an input is never
republished under a reader (and a reader never starts on a half-replaced input).

Each artifact ``DIR/NAME`` has one lock file beside it, ``DIR/.NAME.lock``. The kernel
drops a flock when its holder dies, so a killed run never blocks the next.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmcli.errors import IOFailure, LockedError

#: Lock file descriptors this process holds.
_HELD: set[int] = set()
#: Outputs this process holds exclusively (resolved paths): reading one takes no lock.
_WRITING: set[Path] = set()
#: The open read sessions, innermost last: (input folder -> fd, whether to wait).
_SESSIONS: list[tuple[dict[Path, int], bool]] = []


def _drop_inherited_locks() -> None:
    # A forked worker shares its parent's open lock file; were it kept, a lock would
    # outlive a killed parent for as long as its workers run. Only the parent holds it.
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()
    _WRITING.clear()
    _SESSIONS.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


def lock_file(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _take(fd: int, path: Path, mode: int, wait: bool, verb: str, hint: str) -> None:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
    holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
    if not wait:
        raise LockedError(f"{path}: {verb} by {holder}", hint=hint) from None
    print(f"mmcli: {path} is {verb} by {holder}; waiting", file=sys.stderr, flush=True)
    fcntl.flock(fd, mode)


@contextmanager
def locked(out: Path, wait: bool = False) -> Iterator[None]:
    """Hold the lock of output ``out`` exclusively for a whole run."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file(out), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise IOFailure(f"{out}: cannot create its lock file ({err})") from err
    real = out.resolve()
    try:
        _take(
            fd,
            out,
            fcntl.LOCK_EX,
            wait,
            "locked",
            "another run is writing it, or reading it as its input; wait for that run to "
            "finish, or pass --wait",
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} (mmcli {' '.join(sys.argv[1:2])})".encode(), 0)
        _HELD.add(fd)
        _WRITING.add(real)
        yield
    finally:
        _WRITING.discard(real)
        _HELD.discard(fd)
        os.close(fd)


@contextmanager
def reading(wait: bool = False) -> Iterator[None]:
    """A stage run's read session: every artifact loaded inside it stays locked (shared)
    until the session ends. Outside a session, loading takes no lock."""
    session: dict[Path, int] = {}
    _SESSIONS.append((session, wait))
    try:
        yield
    finally:
        _SESSIONS.remove((session, wait))
        for fd in session.values():
            _HELD.discard(fd)
            os.close(fd)


def hold_shared(path: Path) -> None:
    """Inside a read session, lock input artifact ``path`` shared until the session ends.

    A writer of ``path`` holds it exclusively: this waits for it (``--wait``) or fails
    with exit 7. A folder where no lock file can be made (read-only) cannot be written
    either, so it is read without one.
    """
    if not _SESSIONS:
        return
    session, wait = _SESSIONS[-1]
    real = Path(path).resolve()
    if real in session or real in _WRITING:
        return
    try:
        fd = os.open(lock_file(real), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        try:
            fd = os.open(lock_file(real), os.O_RDONLY)
        except OSError:
            return
    try:
        _take(
            fd,
            Path(path),
            fcntl.LOCK_SH,
            wait,
            "being written",
            "wait for that run to finish, or pass --wait",
        )
    except BaseException:
        os.close(fd)
        raise
    session[real] = fd
    _HELD.add(fd)
