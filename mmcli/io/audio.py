"""Audio decoding: explicit decoder, mono, resampled, trimmed or padded to a fixed length.

Budgets come before work: channels, source rate, duration and the decoded size
(frames x channels x 4 bytes) are all checked from the header, before a sample is read.
Samples are then read in blocks of ``BLOCK_FRAMES``, each mixed to mono as it comes, so
memory holds one block and the mono part the stored clip needs, whatever the header says.
"""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

MAX_CHANNELS = 16
MAX_SECONDS = 600.0  # default of --audio-max-seconds
#: Highest source rate accepted. 768 kHz is the top rate of any converter in use (DXD
#: is 352.8/384 kHz); soxr's time grows with the rate ratio, so a header declaring GHz
#: would make resampling a few thousand samples take seconds.
MAX_RATE = 768_000
#: Default of --audio-max-decoded-mb (MB = 10^6 bytes of float32 samples, all channels).
#: A 10-minute 48 kHz stereo file is 230 MB and 10 minutes of 96 kHz 8-channel 1843 MB;
#: a few-MB FLAC of constant frames declaring 600 s x 8 x 655 kHz would be 12,600 MB.
#: Reading is in blocks, so this bounds work (about 2 s of FLAC decoding), not memory.
MAX_DECODED_MB = 2000.0
#: Frames per read: 4 MiB for 16 channels.
BLOCK_FRAMES = 65_536


class AudioRejected(Exception):
    """The per-row reason an audio file cannot be used."""


def load_audio(
    source: Path | bytes,
    sample_rate: int,
    seconds: float,
    max_decoded_mb: float = MAX_DECODED_MB,
    max_seconds: float = MAX_SECONDS,
) -> np.ndarray:
    """Decode a file (its path, or its bytes already read) to float32 mono at
    ``sample_rate``, exactly ``seconds`` long.

    A file whose samples decode to more than ``max_decoded_mb`` MB is refused from its
    header. Only the frames the stored clip needs (plus a second for the resampling
    filter) are kept. A WAV whose data chunk was checked against the file size is read
    no further: what lies past the stored clip (NaN samples included) is not looked at.
    Other formats are read to their end, block by block, so a file shorter than its
    header says (a truncated FLAC) is still refused.

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
            length_checked = _check_wav_length(head, size)
        _check_budgets(channels, rate, frames, max_decoded_mb, max_seconds)
        # The resampler's input: the clip plus a second for its filter (the output of a
        # second's margin is sample-identical to resampling the whole file).
        keep = min(frames, math.ceil(seconds * rate) + rate)
        mono = _read_mono(audio, keep, channels)
        if not length_checked:
            _read_rest(audio, keep, channels)
    if len(mono) < keep:
        # libsndfile returns what it could read; a short read is a truncated file.
        raise AudioRejected(f"truncated: header says {frames} frames, read {len(mono)}")
    if rate != sample_rate:
        import soxr  # what librosa itself uses, without importing librosa's signal stack

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32)
    length = int(round(seconds * sample_rate))
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(mono))] = mono[:length]
    return out


def _check_budgets(
    channels: int, rate: int, frames: int, max_decoded_mb: float, max_seconds: float
) -> None:
    if rate <= 0 or frames <= 0:
        raise AudioRejected("no audio samples")
    if rate > MAX_RATE:
        raise AudioRejected(f"sample rate {rate} Hz (at most {MAX_RATE})")
    if frames / rate > max_seconds:
        raise AudioRejected(
            f"{frames / rate:.0f} s long (at most {max_seconds:g} s; raise --audio-max-seconds)"
        )
    decoded = frames * channels * 4
    if decoded > max_decoded_mb * 1e6:
        raise AudioRejected(
            f"decodes to {decoded / 1e6:.6g} MB ({frames} frames x {channels} channels x "
            f"4 bytes, from the header), over the {max_decoded_mb:g} MB budget "
            "(raise --audio-max-decoded-mb)"
        )


def _blocks(audio: sf.SoundFile, frames: int, channels: int, first: int = 0):
    """Up to ``frames`` frames from frame ``first`` on, as float32 blocks of at most
    BLOCK_FRAMES, each finite."""
    buffer = np.empty((min(BLOCK_FRAMES, max(frames, 1)), channels), dtype=np.float32)
    at, end = first, first + frames
    while at < end:
        try:
            block = audio.read(min(end - at, len(buffer)), dtype="float32", out=buffer)
        except (sf.LibsndfileError, RuntimeError) as exc:
            # Where it failed says more than libsndfile's words ("psf_fseek() failed"
            # for a FLAC shorter than its header).
            reason = f"cannot decode audio past frame {at} of {audio.frames}: {exc}"
            raise AudioRejected(reason) from None
        if len(block) == 0:
            return
        if not np.isfinite(block).all():
            raise AudioRejected("audio contains NaN or infinite samples")
        yield block
        at += len(block)


def _read_mono(audio: sf.SoundFile, frames: int, channels: int) -> np.ndarray:
    """The first ``frames`` frames mixed to mono (fewer when the file holds fewer)."""
    mono = np.empty(frames, dtype=np.float32)
    got = 0
    for block in _blocks(audio, frames, channels):
        # A mean over one channel is a copy, and numpy's axis-1 mean costs more than the
        # decode; row by row, a block's mean is the whole file's.
        mono[got : got + len(block)] = block[:, 0] if channels == 1 else block.mean(axis=1)
        got += len(block)
    return mono[:got]


def _read_rest(audio: sf.SoundFile, first: int, channels: int) -> None:
    """Decode the frames from ``first`` to the end and drop them: a short read is
    truncation."""
    total = audio.frames
    got = sum(len(block) for block in _blocks(audio, total - first, channels, first))
    if first + got < total:
        raise AudioRejected(f"truncated: header says {total} frames, read {first + got}")


def _check_wav_length(f: BinaryIO, size: int) -> bool:
    """Refuse a WAV whose data chunk is shorter than its header says; True when ``f`` is
    a WAV whose data chunk was found (libsndfile's frame count then matches the file).

    libsndfile quietly shrinks the frame count to what the file holds, so a truncated
    WAV would otherwise decode as a shorter clip. ``f`` is the file (``size`` bytes),
    read from its start.
    """
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return False
    order = "<" if head[:4] == b"RIFF" else ">"
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return False
        chunk_id, chunk_size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
        if chunk_id == b"data":
            available = size - f.tell()
            # 0 and 0xFFFFFFFF mark a stream whose length was never filled in.
            if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                raise AudioRejected(
                    f"truncated: header says {chunk_size} bytes of audio, file has {available}"
                )
            return True
        f.seek(chunk_size + (chunk_size & 1), 1)
