"""Video decoding with PyAV (FFmpeg bundled in its wheel): K frames and the soundtrack.

``load_video`` reads a clip in two passes. The first only demuxes the video packets
(no decoding) to count the frames and find the true duration, refusing an over-long
clip early — from the header when it states a duration, else as soon as a packet's
timestamp passes the limit. The second decodes up to the last frame it needs and
converts only the K sampled frames, resized like images. The soundtrack, when there is
one, is decoded, mixed to mono and resampled like an audio column.

FFmpeg never guesses the container: the demuxer is chosen from an allowed list (by the
file's extension first), so a playlist or concat file named ``.mp4`` cannot make it open
other files or URLs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Extension -> FFmpeg demuxer; a file with another extension is tried with each in turn.
DEMUXERS = {
    ".mp4": "mov",
    ".mov": "mov",
    ".m4v": "mov",
    ".webm": "matroska",
    ".mkv": "matroska",
    ".avi": "avi",
}
MAX_PIXELS = 40_000_000  # per frame, as for images
MAX_FRAMES = 100_000  # a 60 fps clip of ~28 minutes; refuses absurd frame rates too
MAX_CHANNELS = 16
MAX_SECONDS = 120.0  # default of --video-max-seconds
ALLOWED = "MP4/MOV, WebM/Matroska or AVI"


class VideoRejected(Exception):
    """The per-row reason a video file cannot be used."""


def sample_indices(n_frames: int, k: int) -> np.ndarray:
    """K frame indices spread uniformly over ``n_frames``: the centre of K equal segments.

    A clip shorter than K frames repeats frames (each nearest in time), so every slot
    holds a real frame and temporal pooling is not diluted by blank padding.
    """
    return np.minimum(((np.arange(k) + 0.5) * n_frames / k).astype(np.int64), n_frames - 1)


def load_video(
    path: Path,
    frames: int,
    size: int,
    sample_rate: int,
    seconds: float,
    max_seconds: float = MAX_SECONDS,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode ``path`` into ((frames, size, size, 3) uint8, soundtrack float32 or None).

    The soundtrack is mono at ``sample_rate``, trimmed or zero-padded to ``seconds``; it
    is None when the clip has no audio stream or the stream holds no samples.
    """
    if path.stat().st_size == 0:
        raise VideoRejected("empty file (0 bytes)")
    import av

    demuxer = _demuxer(path, av)
    try:
        n_frames = _count_frames(path, demuxer, max_seconds, av)
        picked = _decode_frames(path, demuxer, sample_indices(n_frames, frames), size, av)
        sound = _decode_audio(path, demuxer, sample_rate, seconds, av)
    except av.FFmpegError as exc:
        raise VideoRejected(f"cannot decode video: {exc}") from None
    return picked, sound


def _open(path: Path, demuxer: str, av: Any) -> Any:
    # Local files only, whatever the container asks for.
    return av.open(str(path), format=demuxer, options={"protocol_whitelist": "file"})


def _demuxer(path: Path, av: Any) -> str:
    """The allowed demuxer for ``path``: by extension, else the first that reads its header."""
    if path.suffix.lower() in DEMUXERS:
        return DEMUXERS[path.suffix.lower()]
    error = "not a video container"
    for name in sorted(set(DEMUXERS.values())):
        try:
            with _open(path, name, av):
                return name
        except av.FFmpegError as exc:
            error = str(exc)
    raise VideoRejected(f"cannot read the video container ({ALLOWED}): {error}")


def _video_stream(container: Any) -> Any:
    if not container.streams.video:
        raise VideoRejected("no video stream in the file")
    return container.streams.video[0]


def _count_frames(path: Path, demuxer: str, max_seconds: float, av: Any) -> int:
    """Frames in the clip, from its packets (not decoded); refuses over-long clips."""
    try:
        container = _open(path, demuxer, av)
    except av.FFmpegError as exc:
        raise VideoRejected(f"cannot read the video container ({ALLOWED}): {exc}") from None
    with container:
        stream = _video_stream(container)
        ctx = stream.codec_context
        if ctx.width * ctx.height > MAX_PIXELS:
            raise VideoRejected(
                f"frames are {ctx.width}x{ctx.height} pixels, over the {MAX_PIXELS} limit"
            )
        stated = _header_seconds(container, stream)
        if stated is not None and stated > max_seconds:
            raise VideoRejected(
                f"{stated:.1f} s long according to its header (at most {max_seconds:g} s; "
                "raise --video-max-seconds)"
            )
        count, base, first = 0, float(stream.time_base or 0), None
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            count += 1
            if packet.pts is not None and base:
                first = packet.pts if first is None else min(first, packet.pts)
                if (packet.pts - first) * base > max_seconds:  # timestamps need not start at 0
                    raise VideoRejected(
                        f"longer than {max_seconds:g} s (raise --video-max-seconds)"
                    )
            if count > MAX_FRAMES:
                raise VideoRejected(f"over {MAX_FRAMES} frames")
    if count == 0:
        raise VideoRejected("the video stream has no frames")
    return count


def _header_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE units
    return None


def _decode_frames(path: Path, demuxer: str, wanted: np.ndarray, size: int, av: Any) -> np.ndarray:
    """Decode in order up to the last wanted frame; convert only the wanted ones."""
    out = np.zeros((len(wanted), size, size, 3), dtype=np.uint8)
    last: np.ndarray | None = None
    with _open(path, demuxer, av) as container:
        stream = _video_stream(container)
        slot = 0
        for index, frame in enumerate(container.decode(stream)):
            if index < wanted[slot]:
                continue
            last = _resize(frame.to_ndarray(format="rgb24"), size)
            while slot < len(wanted) and wanted[slot] == index:
                out[slot] = last
                slot += 1
            if slot == len(wanted):
                break
    if last is None:
        raise VideoRejected("no frame could be decoded")
    # The decoder gave fewer frames than there were packets (damaged frames dropped):
    # the remaining slots repeat the last decoded frame, as for a short clip.
    out[slot:] = last
    return out


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    # The same resampling as image columns, so a frame and a still image look alike.
    img = Image.fromarray(rgb)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(img, dtype=np.uint8)


def _decode_audio(
    path: Path, demuxer: str, sample_rate: int, seconds: float, av: Any
) -> np.ndarray | None:
    """The first ``seconds`` of the first audio stream, mono at ``sample_rate``; None if none."""
    length = int(round(seconds * sample_rate))
    with _open(path, demuxer, av) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        if not 1 <= channels <= MAX_CHANNELS:
            raise VideoRejected(f"soundtrack has {channels} channels (at most {MAX_CHANNELS})")
        rate = stream.codec_context.sample_rate
        if not rate:
            raise VideoRejected("soundtrack has no sample rate")
        # Planar float at the stream's own rate; mixing and resampling are done as for
        # audio columns (mean of channels, soxr HQ) so both give the same samples.
        resampler = av.AudioResampler(format="fltp", rate=rate)
        need = int(np.ceil(seconds * rate)) + rate  # enough input for the output plus margin
        parts, got = [], 0
        for frame in container.decode(stream):
            for planar in resampler.resample(frame):
                parts.append(planar.to_ndarray().mean(axis=0))
                got += planar.samples
            if got >= need:
                break
    if got == 0:
        return None
    mono = np.concatenate(parts).astype(np.float32)
    if not np.isfinite(mono).all():
        raise VideoRejected("soundtrack contains NaN or infinite samples")
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32)
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(mono))] = mono[:length]
    return out
