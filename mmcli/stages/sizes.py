"""The sizes media are stored at, when not given: the data's own, up to a cap.

A 32 px image is stored at 32 px, not upscaled to 64; a 1 s clip recorded at 8 kHz is
stored as 1 s at 8 kHz, not zero-padded to 2 s and resampled to 16 kHz. Upscaling adds
no information and makes every later stage (and e2e training most) several times slower.

The sizes come from the headers of a sample of the files (``PROBE_FILES`` per column,
spread evenly over the table), read without decoding: the largest image side, the
highest sample rate and the longest clip, each capped at what an explicit flag would
default to (``IMAGE_CAP``, ``RATE_CAP``, ``SECONDS_CAP``). A file that cannot be read, or
a path outside the data folder, is skipped here: the decoding pass reports it.

Video columns are not probed (their headers are costly to read); a table with one keeps
the caps for the sizes its frames and soundtrack use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from mmcli.artifacts.records import Column
    from mmcli.config import PreprocessConfig

PROBE_FILES = 64
IMAGE_CAP, IMAGE_MIN = 64, 8
RATE_CAP, RATE_MIN = 16000, 1000
SECONDS_CAP = 2.0


@dataclass(frozen=True)
class Sizes:
    image_size: int
    sample_rate: int
    audio_seconds: float


def stored_sizes(
    df: pd.DataFrame, columns: list[Column], cfg: PreprocessConfig, root: Path | None
) -> Sizes:
    """The image size, sample rate and clip length to store: ``cfg``'s where given, else
    the data's own (see the module's docstring)."""
    has_video = any(c.type == "video" for c in columns)
    probe = root is not None and not has_video
    images = [c.name for c in columns if c.type == "image"] if probe else []
    audio = [c.name for c in columns if c.type == "audio"] if probe else []
    image_size = cfg.image_size
    if image_size is None:
        sides = [s for name in images for s in _probe(df[name], root, _image_side)]
        image_size = max(IMAGE_MIN, min(IMAGE_CAP, max(sides))) if sides else IMAGE_CAP
    sample_rate, seconds = cfg.sample_rate, cfg.audio_seconds
    if sample_rate is None or seconds is None:
        heads = [h for name in audio for h in _probe(df[name], root, _audio_header)]
        if sample_rate is None:
            top = max((rate for rate, _ in heads), default=RATE_CAP)
            sample_rate = max(RATE_MIN, min(RATE_CAP, top))
        if seconds is None:
            longest = max((length for _, length in heads), default=SECONDS_CAP)
            # Rounded up to 10 ms, so that the clip is never cut by a rounding.
            seconds = min(SECONDS_CAP, max(0.01, math.ceil(longest * 100 - 1e-6) / 100))
    return Sizes(image_size=int(image_size), sample_rate=int(sample_rate), audio_seconds=seconds)


def _probe(cells: Any, root: Path, read: Any) -> list[Any]:
    """``read(path)`` for up to PROBE_FILES distinct files of a column, evenly spaced."""
    import stat

    from mmcli.io.paths import resolve_file

    values = [str(v) for v in cells.tolist() if v is not None and str(v).strip()]
    unique = list(dict.fromkeys(values))
    step = max(1, len(unique) // PROBE_FILES)
    found = []
    for cell in unique[::step][:PROBE_FILES]:
        try:
            path, info = resolve_file(cell, root)
            # A regular file only: opening a FIFO put in a file's place would block.
            value = read(path) if stat.S_ISREG(info.st_mode) else None
        except Exception:  # noqa: BLE001 - a bad file is the decoding pass's to report
            continue
        if value is not None:
            found.append(value)
    return found


def _image_side(path: str) -> int | None:
    import warnings

    from PIL import Image

    with warnings.catch_warnings():  # a bomb's warning is decoding's to give
        warnings.simplefilter("ignore")
        with Image.open(path) as img:  # the header only; nothing is decoded
            return max(img.size)


def _audio_header(path: str) -> tuple[int, float] | None:
    import soundfile as sf

    info = sf.info(path)
    if info.samplerate <= 0 or info.frames <= 0:
        return None
    return info.samplerate, info.frames / info.samplerate
