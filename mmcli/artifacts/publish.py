"""Atomic publishing: build in a temporary sibling folder, write mmcli.json last, rename.

A killed run leaves at most a hidden ``.NAME.tmp-PID`` folder, which no stage accepts
(it has no record until the very end) and the next run of that output removes, whether it
builds or finds the artifact up to date (``remove_leftovers``). The artifact a build
replaces is renamed ``.NAME.old-PID`` and deleted; a big one by a detached process, so the
stage does not wait seconds for gigabytes to be freed. A lock file beside the output keeps
two runs from writing the same artifact at once.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mmcli import __version__
from mmcli.artifacts import records
from mmcli.artifacts.hashing import file_sha256, json_sha256
from mmcli.artifacts.locks import locked, reading
from mmcli.artifacts.record import (
    RECORD_NAME,
    library_versions,
    seed_verified,
)
from mmcli.errors import IOFailure, UsageError

F = TypeVar("F", bound=Callable[..., Any])

#: A replaced artifact holding at least this many bytes is deleted in the background.
BACKGROUND_DELETE_BYTES = 256 << 20


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
        self.record: Any = None  # the published records.Record
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
            remove_leftovers(self.out)
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
            if _write_error(exc):  # safetensors reports the disk in its own exception
                raise OSError(str(exc).replace("Error while serializing: ", "")) from exc
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
        mask = current_umask()
        for path in sorted(p for p in self.dir.rglob("*") if not p.is_symlink()):
            # Whatever a library chose (safetensors writes 0600), an artifact's files get
            # the modes the user's umask gives, as files made with open() do.
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)
        self.dir.chmod(0o777 & ~mask)
        for path in sorted(p for p in self.dir.rglob("*") if p.is_file()):
            rel = path.relative_to(self.dir).as_posix()
            digest = self.hashed.get(rel) or file_sha256(path)
            outputs[rel] = {"sha256": digest, "bytes": path.stat().st_size}
        # Validated against the stage's model before anything is published: a writer that
        # leaves out a field fails here, not in the next stage that reads it.
        self.record = records.parse(
            {
                "format": records.FORMAT,
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
        )
        record_tmp = self.dir / RECORD_NAME
        with open(record_tmp, "w", encoding="utf-8") as f:
            json.dump(records.dump(self.record), f, indent=2, sort_keys=True, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
        if self.out.exists():
            os.rename(self.out, old)
        os.rename(self.dir, self.out)
        seed_verified(self.out, outputs)
        remove_replaced(old)


def current_umask() -> int:
    """The process's umask, read without changing it where the system says (Linux), else
    by setting and restoring it."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a library's report of a failed write (safetensors' I/O errors)."""
    if exc is None or type(exc).__name__ != "SafetensorError":
        return False
    return "I/O error" in str(exc)


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


def remove_leftovers(out: Path) -> None:
    """Remove the ``.NAME.tmp-PID`` and ``.NAME.old-PID`` folders that dead runs left
    beside output ``out``; the caller holds ``out``'s lock.

    Holding the lock means no other run is writing ``out``; the PID is checked as well,
    so a folder named after a live process (another one, seen through the same folder)
    is never touched. This process's own leftovers, from an earlier run in it that
    failed, go too: a run starting now has made none yet.
    """
    out = Path(out)
    for kind in ("tmp", "old"):
        for stale in out.parent.glob(f".{out.name}.{kind}-*"):
            pid = stale.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
                continue
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts)."""
    if pid == 0:
        return True  # not a PID a run is named after: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:  # past any PID the system hands out
        return False
    except OSError:  # EPERM: it exists, and belongs to someone else
        return True
    return True


def exclusive(run: F) -> F:
    """Decorate a stage's ``run(cfg, ...)``: the whole run holds ``cfg.out``'s lock, and a
    shared lock on every input artifact it loads; an output that overlaps an input is a
    usage error."""

    @functools.wraps(run)
    def wrapper(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        check_overlap(cfg)
        wait = getattr(cfg, "wait", False)
        if kwargs.get("dry_run"):  # writes nothing, so it takes no lock and makes no folder
            return run(cfg, *args, **kwargs)
        if int(os.environ.get("RANK", "0")) > 0:  # under torchrun, rank 0 alone writes
            with reading(wait):
                return run(cfg, *args, **kwargs)
        with locked(cfg.out, wait), reading(wait):
            try:
                remove_leftovers(cfg.out)  # up to date or not: a killed run's folder goes
            except OSError:
                pass  # cleaning up is not the run's work; the build reports a bad disk
            return run(cfg, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_overlap(cfg: Any) -> None:
    """Refuse an output that is, lies inside, or holds one of the stage's inputs: publishing
    it would replace or delete what the stage reads."""
    out = Path(cfg.out).resolve()
    for name in cfg.PATH_FIELDS:
        if name in ("out", "data_root"):  # a work folder inside the data folder is usual
            continue
        value = getattr(cfg, name)
        for given in value if isinstance(value, list) else [value]:
            if given is None:
                continue
            path = Path(given).resolve()
            if out == path or path in out.parents or out in path.parents:
                raise UsageError(
                    f"--out {cfg.out}: the output would "
                    + ("replace" if out == path else "overlap")
                    + f" the input {given}",
                    hint="choose an output folder apart from the inputs",
                )
