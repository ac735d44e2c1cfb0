"""Content hashes. SHA-256 from the standard library: stable, fast enough, no extra dependency."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same object always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def json_sha256(obj: Any) -> str:
    """Hex SHA-256 of an object's canonical JSON."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()
