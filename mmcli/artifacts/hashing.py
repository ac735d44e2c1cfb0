"""Content hashes. SHA-256 from the standard library: stable, fast enough, no extra dependency."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, BinaryIO

#: Bytes read at a time when hashing a file.
_BLOCK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as f:
        return stream_sha256(f)


def stream_sha256(f: BinaryIO) -> str:
    """Hex SHA-256 of what is left in an open binary file, read a block at a time.

    ``hashlib.file_digest`` does the same but needs Python 3.11; mmcli supports 3.10.
    """
    digest = hashlib.sha256()
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    while size := f.readinto(buffer):  # type: ignore[attr-defined]
        digest.update(view[:size])
    return digest.hexdigest()


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same object always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def json_sha256(obj: Any) -> str:
    """Hex SHA-256 of an object's canonical JSON."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()
