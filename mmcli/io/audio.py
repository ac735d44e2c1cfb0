"""Audio decoding: explicit decoder, mono, resampled, trimmed or padded to a fixed length."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

MAX_CHANNELS = 16
MAX_SECONDS = 600.0


class AudioRejected(Exception):
    """The per-row reason an audio file cannot be used."""


def load_audio(source: Path | bytes, sample_rate: int, seconds: float) -> np.ndarray:
    """Decode a file (its path, or its bytes already read) to float32 mono at
    ``sample_rate``, exactly ``seconds`` long.

    A path is opened by libsndfile itself: faster than handing it a Python file object,
    whose reads go through callbacks.
    """
    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    if size == 0:
        raise AudioRejected("empty file (0 bytes)")
    try:  # one open: header checks, then the decode
        audio = sf.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioRejected(f"cannot read audio header: {exc}") from None
    with audio:
        channels, rate, frames = audio.channels, audio.samplerate, audio.frames
        # Checked from the header, before decoding allocates anything.
        if not 1 <= channels <= MAX_CHANNELS:
            raise AudioRejected(f"{channels} channels (at most {MAX_CHANNELS})")
        with io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as head:
            _check_wav_length(head, size)
        if rate <= 0 or frames <= 0:
            raise AudioRejected("no audio samples")
        if frames / rate > MAX_SECONDS:
            raise AudioRejected(f"{frames / rate:.0f} s long (at most {MAX_SECONDS:.0f} s)")
        try:
            data = audio.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioRejected(f"cannot decode audio: {exc}") from None
    if len(data) < frames:
        # libsndfile returns what it could read; a short read is a truncated file.
        raise AudioRejected(f"truncated: header says {frames} frames, read {len(data)}")
    if not np.isfinite(data).all():
        raise AudioRejected("audio contains NaN or infinite samples")
    # A mean over one channel is a copy, and numpy's axis-1 mean costs more than the decode.
    mono = data[:, 0] if channels == 1 else data.mean(axis=1)
    if rate != sample_rate:
        import soxr  # what librosa itself uses, without importing librosa's signal stack

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32)
    length = int(round(seconds * sample_rate))
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(mono))] = mono[:length]
    return out


def _check_wav_length(f: BinaryIO, size: int) -> None:
    """Refuse a WAV whose data chunk is shorter than its header says.

    libsndfile quietly shrinks the frame count to what the file holds, so a truncated
    WAV would otherwise decode as a shorter clip. ``f`` is the file (``size`` bytes),
    read from its start.
    """
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return
    order = "<" if head[:4] == b"RIFF" else ">"
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return
        chunk_id, chunk_size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
        if chunk_id == b"data":
            available = size - f.tell()
            # 0 and 0xFFFFFFFF mark a stream whose length was never filled in.
            if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                raise AudioRejected(
                    f"truncated: header says {chunk_size} bytes of audio, file has {available}"
                )
            return
        f.seek(chunk_size + (chunk_size & 1), 1)
