"""Resolving a manifest's file paths safely inside its data root."""

from __future__ import annotations

import os
from pathlib import Path


class PathRejected(Exception):
    """A path cell that cannot be used; the message is the per-row reason."""


def resolve_in_root(cell: str, root: Path) -> Path:
    """Resolve ``cell`` against ``root``; refuse anything that lands outside it.

    Symlinks are followed before the check, so a link pointing out of the root is refused
    like ``../`` or an absolute path elsewhere.
    """
    root = root.resolve()
    raw = Path(os.path.expanduser(cell)) if cell.startswith("~") else Path(cell)
    path = (root / raw).resolve()
    if path != root and root not in path.parents:
        raise PathRejected(f"path {cell!r} is outside the data folder {root}")
    if not path.exists():
        raise PathRejected(f"file not found: {cell}")
    if not path.is_file():
        raise PathRejected(f"not a regular file: {cell}")
    return path
