"""Atomic publishing: build in a temporary sibling folder, write mmcli.json last, rename.

A killed run leaves at most a hidden ``.NAME.tmp-PID`` folder, which no stage accepts
(it has no record until the very end) and the next run removes. The artifact a build
replaces is renamed ``.NAME.old-PID`` and deleted; a big one by a detached process, so the
stage does not wait seconds for gigabytes to be freed. A lock file beside the output keeps
two runs from writing the same artifact at once.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from mmcli import __version__
from mmcli.artifacts.hashing import file_sha256, json_sha256
from mmcli.artifacts.record import RECORD_NAME, library_versions
from mmcli.errors import IOFailure, LockedError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

#: A replaced artifact holding at least this many bytes is deleted in the background.
BACKGROUND_DELETE_BYTES = 256 << 20


def up_to_date(out: Path, key: str) -> dict[str, Any] | None:
    """The existing record if ``out`` is a complete artifact built with ``key``, else None."""
    try:
        record = json.loads((out / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("key") != key:
        return None
    for name, info in record.get("outputs", {}).items():
        try:
            if (out / name).stat().st_size != info["bytes"]:
                return None
        except OSError:
            return None
    return record


def rebuild_reason(out: Path, params: dict[str, Any]) -> str:
    """Why ``out`` is not up to date: missing, which parameters changed, or its inputs."""
    try:
        record = json.loads((Path(out) / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no complete artifact yet"
    old = record.get("params", {})
    changed = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
    if changed:
        return "parameters changed: " + ", ".join(
            f"{k} {old.get(k)!r} -> {params.get(k)!r}" for k in changed
        )
    return "its inputs changed"


class Builder:
    """Context manager that yields a temporary folder and publishes it atomically on success.

    Usage::

        with Builder(out, stage="fuse", params=p, inputs=i, key=k, seed=s) as b:
            np.save(b.dir / "X.npy", x)
            b.info["rows"] = {...}
        b.record  # the published record
    """

    def __init__(
        self,
        out: Path,
        *,
        stage: str,
        params: dict[str, Any],
        inputs: dict[str, Any],
        key: str,
        seed: int | None = None,
    ):
        self.out = Path(out)
        self.stage, self.params, self.inputs, self.key, self.seed = stage, params, inputs, key, seed
        self.info: dict[str, Any] = {}
        self.dir = self.out.parent / f".{self.out.name}.tmp-{os.getpid()}"
        self.record: dict[str, Any] = {}
        #: SHA-256 of output files hashed while they were written (path in the artifact ->
        #: digest); the others are hashed when published.
        self.hashed: dict[str, str] = {}

    # -- build and publish -----------------------------------------------------
    def __enter__(self) -> Builder:
        if (
            self.out.exists()
            and not (self.out / RECORD_NAME).is_file()
            and (not self.out.is_dir() or any(self.out.iterdir()))
        ):
            raise UsageError(
                f"{self.out}: exists and is not an mmcli artifact; refusing to replace it",
                hint="choose another --out or remove it yourself",
            )
        try:
            # The stage holds the output's lock (see ``exclusive``), so any leftover
            # temporary folder belongs to a dead run.
            for stale in self.out.parent.glob(f".{self.out.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            for stale in self.out.parent.glob(f".{self.out.name}.old-*"):
                shutil.rmtree(stale, ignore_errors=True)
            self.dir.mkdir(parents=True)
        except OSError as err:
            raise IOFailure(f"{self.out}: cannot create a folder beside it ({err})") from err
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            # Building is writing: an OSError here is the disk (full, a size limit, read-only),
            # which numpy reports without an errno, so it is not matched by code.
            if isinstance(exc, OSError):
                raise exc
            if exc_type is None:
                self._publish()
        except OSError as err:
            raise IOFailure(
                f"{self.out}: could not write the artifact ({err.strerror or err})",
                hint="the previous output, if any, is untouched",
            ) from err
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _publish(self) -> None:
        outputs = {}
        for path in sorted(p for p in self.dir.rglob("*") if p.is_file()):
            rel = path.relative_to(self.dir).as_posix()
            digest = self.hashed.get(rel) or file_sha256(path)
            outputs[rel] = {"sha256": digest, "bytes": path.stat().st_size}
        self.record = {
            "format": 1,
            "stage": self.stage,
            "mmcli_version": __version__,
            "key": self.key,
            # What downstream stages depend on: the content of the outputs, nothing else.
            "fingerprint": json_sha256(outputs),
            "params": self.params,
            "seed": self.seed,
            "inputs": self.inputs,
            "outputs": outputs,
            **self.info,
            "libraries": library_versions(),
        }
        record_tmp = self.dir / RECORD_NAME
        with open(record_tmp, "w", encoding="utf-8") as f:
            json.dump(self.record, f, indent=2, sort_keys=True, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
        if self.out.exists():
            os.rename(self.out, old)
        os.rename(self.dir, self.out)
        remove_replaced(old)


def remove_replaced(old: Path) -> None:
    """Delete a replaced artifact, without waiting for it when it is big.

    Freeing gigabytes takes seconds: 2 s for 2.5 GB of audio rows on ext4, 4.5 s when the
    file has holes and the disk is mounted with online discard. Nothing reads the old files
    any more, so a detached process deletes them; if it never finishes, the next build of
    this output removes what is left (``.NAME.old-*``).
    """
    try:
        size = sum(p.stat().st_size for p in old.rglob("*") if p.is_file())
    except OSError:
        size = 0
    if size >= BACKGROUND_DELETE_BYTES:
        code = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"
        try:
            subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", code, str(old)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # not killed with this process's group (Ctrl-C)
            )
            return
        except OSError:
            pass
    shutil.rmtree(old, ignore_errors=True)


#: Lock file descriptors this process holds.
_HELD: set[int] = set()


def _drop_inherited_locks() -> None:
    # A forked worker shares its parent's open lock file; were it kept, a lock would
    # outlive a killed parent for as long as its workers run. Only the parent holds it.
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


@contextmanager
def locked(out: Path, wait: bool = False) -> Iterator[None]:
    """Hold the lock of output ``out`` (a ``.NAME.lock`` file beside it) for a whole run.

    The kernel drops a flock when its holder dies, so a killed run never blocks the next.
    """
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out.parent / f".{out.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise IOFailure(f"{out}: cannot create its lock file ({err})") from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            if not wait:
                raise LockedError(
                    f"{out}: locked by {holder}", hint="wait for that run to finish, or pass --wait"
                ) from None
            print(f"mmcli: {out} is locked by {holder}; waiting", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} (mmcli {' '.join(sys.argv[1:2])})".encode(), 0)
        _HELD.add(fd)
        yield
    finally:
        _HELD.discard(fd)
        os.close(fd)


def exclusive(run: F) -> F:
    """Decorate a stage's ``run(cfg, ...)``: the whole run holds ``cfg.out``'s lock."""

    @functools.wraps(run)
    def wrapper(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("dry_run"):  # writes nothing, so it takes no lock and makes no folder
            return run(cfg, *args, **kwargs)
        if int(os.environ.get("RANK", "0")) > 0:  # under torchrun, rank 0 alone writes
            return run(cfg, *args, **kwargs)
        with locked(cfg.out, getattr(cfg, "wait", False)):
            return run(cfg, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
