"""What kind of media a file holds, from its first bytes (for paths without an extension).

A table of a dozen signatures: a library for it (``filetype``, ``puremagic``) would
bring hundreds of formats mmcli cannot decode, and a dependency, for these lines.
Only the kinds mmcli decodes are named; anything else is None.
"""

from __future__ import annotations

import os
from pathlib import Path

from mmcli.io.paths import PathRejected, open_inside, resolve_file

#: (offset, bytes, kind): the file's bytes at ``offset`` start with ``bytes``.
SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "image"),
    (0, b"\xff\xd8\xff", "image"),  # JPEG
    (0, b"GIF87a", "image"),
    (0, b"GIF89a", "image"),
    (0, b"BM", "image"),
    (0, b"II*\x00", "image"),  # TIFF, little-endian
    (0, b"MM\x00*", "image"),  # TIFF, big-endian
    (8, b"WEBP", "image"),
    (8, b"WAVE", "audio"),
    (0, b"fLaC", "audio"),
    (0, b"OggS", "audio"),
    (0, b"ID3", "audio"),  # MP3 with a tag
    (0, b"\xff\xfb", "audio"),  # MP3 frame
    (0, b"\xff\xf3", "audio"),
    (8, b"AIFF", "audio"),
    (0, b".snd", "audio"),
    (4, b"ftyp", "video"),  # MP4, MOV
    (0, b"\x1a\x45\xdf\xa3", "video"),  # Matroska, WebM
    (8, b"AVI ", "video"),
)
HEAD = 16


def media_kind(head: bytes) -> str | None:
    """``image``, ``audio`` or ``video`` when ``head`` (a file's first bytes) is one."""
    for offset, magic, kind in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    return None


def file_kind(cell: str, root: Path) -> str | None:
    """The media kind of the file ``cell`` names inside ``root``; None when it is not a
    readable file there, or not media. Reads 16 bytes, through the same checks as a
    decoder (no path out of the root, no symlink swapped in)."""
    try:
        path, _ = resolve_file(cell, root)
        fd = open_inside(path, root)
    except PathRejected:
        return None
    try:
        return media_kind(os.read(fd, HEAD))
    except OSError:
        return None
    finally:
        os.close(fd)
