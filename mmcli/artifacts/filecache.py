"""Content hashes of many input files, with a stat cache so that unchanged files are not reread.

As DVC's state database: a file whose size, modification time (ns), inode and change
time are those recorded with its hash is taken to have that hash. The cache is a JSON
file beside the output (``.NAME.files.json``); deleting it only costs one rehash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mmcli.artifacts.hashing import file_sha256


def cache_path(out: Path) -> Path:
    return out.parent / f".{out.name}.files.json"


def _signature(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def _hash(path: str) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"


def hash_files(paths: list[Path], cache: Path | None) -> dict[str, str]:
    """Absolute path -> hex SHA-256 of each file, or ``"unreadable: <reason>"``."""
    try:
        known = json.loads(cache.read_text(encoding="utf-8")) if cache else {}
    except (OSError, ValueError):
        known = {}
    result: dict[str, str] = {}
    todo: list[tuple[str, list[int]]] = []
    for path in dict.fromkeys(str(p) for p in paths):
        try:
            sig = _signature(os.stat(path))
        except OSError as exc:
            result[path] = f"unreadable: {exc.strerror or exc}"
            continue
        entry = known.get(path)
        if entry and entry[0] == sig:
            result[path] = entry[1]
        else:
            todo.append((path, sig))
    if todo:
        # One thread: media files are small and per-file overhead dominates; measured,
        # a thread pool was slower than this loop.
        for path, sig in todo:
            result[path] = digest = _hash(path)
            if not digest.startswith("unreadable"):
                known[path] = [sig, digest]
        if cache:
            # Only files still asked for are kept, so the cache never outgrows the data.
            fresh = {p: known[p] for p in result if p in known}
            tmp = cache.with_name(cache.name + f".tmp-{os.getpid()}")
            try:
                tmp.write_text(json.dumps(fresh, separators=(",", ":")), encoding="utf-8")
                os.replace(tmp, cache)
            except OSError:
                tmp.unlink(missing_ok=True)  # a cache that cannot be written is no error
    return result
