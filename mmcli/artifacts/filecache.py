"""Content hashes of many input files, with a stat cache so that unchanged files are not reread.

As DVC's state database: a file whose size, modification time (ns), inode and change
time are those recorded with its hash is taken to have that hash. The cache is a JSON
file beside the output (``.NAME.files.json``); deleting it only costs one rehash.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from mmcli.artifacts.hashing import stream_sha256
from mmcli.io.paths import OPEN_FLAGS


def cache_path(out: Path) -> Path:
    return out.parent / f".{out.name}.files.json"


def signature(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


#: Files up to this size are hashed from one read() (a block buffer per call costs more
#: than hashing a small file).
SMALL_FILE = 1 << 20


def hash_file(path: str) -> str:
    """Hex SHA-256 of a file, or ``"unreadable: <reason>"``."""
    return read_and_hash(path, SMALL_FILE)[1]


def read_and_hash(path: str, max_bytes: int) -> tuple[bytes | None, str]:
    """(the file's bytes, or None when over ``max_bytes``; its hash as ``hash_file`` gives).

    One read serves both the hash and a decoder, so the two always see the same bytes.
    Only a regular file is read: a symlink is not followed and a FIFO never waited on.
    """
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, "unreadable: not a regular file"
        return read_and_hash_fd(fd, max_bytes)
    finally:
        os.close(fd)


def read_and_hash_fd(fd: int, max_bytes: int) -> tuple[bytes | None, str]:
    """``read_and_hash`` of a file already open, read from its start."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        with os.fdopen(os.dup(fd), "rb") as f:
            if os.fstat(f.fileno()).st_size > max_bytes:
                return None, stream_sha256(f)
            data = f.read()
        return data, hashlib.sha256(data).hexdigest()
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"


def hash_many(paths: list[str]) -> list[str]:
    return [hash_file(p) for p in paths]


def read_cache(cache: Path) -> dict[str, list]:
    """The cache's entries (path -> [signature, sha256]); a damaged or crafted file, or an
    entry of another shape, counts as not known: the files are hashed again."""
    try:
        raw = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {
        k: v
        for k, v in raw.items()
        if isinstance(v, list) and len(v) == 2 and isinstance(v[0], list) and isinstance(v[1], str)
    }


class FileHashes:
    """The stat cache of one output: look up, record, save."""

    def __init__(self, cache: Path | None):
        self.cache = cache
        self.known = read_cache(cache) if cache else {}
        self.seen: dict[str, list] = {}

    def lookup(
        self, path: str, st: os.stat_result | None = None
    ) -> tuple[list[int] | None, str | None]:
        """(stat signature, cached hash or None); (None, reason) when it cannot be stat'ed.

        ``st``: the file's stat when the caller has it already.
        """
        try:
            sig = signature(st or os.stat(path))
        except OSError as exc:
            return None, f"unreadable: {exc.strerror or exc}"
        entry = self.known.get(path)
        if entry and entry[0] == sig:
            self.seen[path] = entry
            return sig, entry[1]
        return sig, None

    def record(self, path: str, sig: list[int], digest: str) -> None:
        if not digest.startswith("unreadable"):
            self.seen[path] = [sig, digest]

    def save(self) -> None:
        """Keep the files asked for this time only, so the cache never outgrows the data."""
        if not self.cache or self.seen == self.known:
            return
        if write_cache(self.cache, self.seen):
            self.known = dict(self.seen)


def write_cache(cache: Path, entries: dict[str, list]) -> bool:
    """Replace a stat cache with ``entries`` atomically; False if it cannot be written
    (a cache that cannot be written is no error)."""
    tmp = cache.with_name(cache.name + f".tmp-{os.getpid()}")
    try:
        # dumps, not dump: json.dump streams through the pure-Python encoder, 10x slower
        # (1.4 s for 40,000 files); the text is a few MB.
        tmp.write_text(json.dumps(entries, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, cache)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
