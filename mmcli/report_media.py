"""The worst-predicted rows' inputs as a person checks them: a thumbnail of each image,
the first frame of each video, a player for each clip of sound.

They are made from the decoded arrays the model saw (images and frames at
``--image-size``, audio at ``--sample-rate`` and ``--audio-seconds``), never from the
user's files again: small and bounded (a 64 px PNG, a 2 s 16-bit WAV), and nothing
untrusted is decoded twice. They go into the evaluate artifact as ``worst/<row>-<n>.png``
and ``.wav``, which report.md links and report.html embeds.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

#: Media columns shown per worst row, at most (a table of 40 images would not be read).
MAX_COLUMNS = 6


def write_worst_media(
    worst: list[dict[str, Any]],
    arrays: dict[str, Any],
    positions: dict[int, int],
    present: dict[str, np.ndarray],
    columns: list[tuple[str, str]],
    sample_rate: int,
    folder: Path,
) -> None:
    """Add ``media`` ({column: file in ``folder``}) to each entry of ``worst``.

    ``arrays`` maps a media column to its decoded array (one row per position),
    ``positions`` a manifest row to its position there, ``present`` a column to whether
    each position holds a value; ``columns`` are (name, type) in manifest order."""
    shown = [(name, kind) for name, kind in columns if name in arrays][:MAX_COLUMNS]
    if not shown:
        return
    (folder / "worst").mkdir(exist_ok=True)
    for entry in worst:
        position = positions.get(entry["row"])
        if position is None:
            continue
        media = {}
        for n, (name, kind) in enumerate(shown):
            if name in present and not present[name][position]:
                continue  # a missing modality: nothing to show
            value = np.asarray(arrays[name][position])
            stem = f"worst/{entry['row']}-{n}"
            if kind in ("image", "video"):
                frame = value if kind == "image" else value[0]  # a video's first frame
                (folder / f"{stem}.png").write_bytes(_png(frame))
                media[name] = f"{stem}.png"
            elif kind == "audio":
                (folder / f"{stem}.wav").write_bytes(_wav(value, sample_rate))
                media[name] = f"{stem}.wav"
        if media:
            entry["media"] = media


def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    # Fixed encoder settings: the same frame gives the same bytes (reproducible artifacts).
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).save(
        buffer, format="PNG", optimize=False, compress_level=6
    )
    return buffer.getvalue()


def _wav(wave: np.ndarray, sample_rate: int) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
