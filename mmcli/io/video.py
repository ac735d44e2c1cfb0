"""Video decoding with PyAV (FFmpeg bundled in its wheel): K frames and the soundtrack.

``load_video`` reads a clip in two passes. The first only demuxes the video packets
(no decoding) to count the frames and find the true duration, refusing an over-long
clip early — from the header when it states a duration, else as soon as a packet's
timestamp passes the limit. The second decodes the interleaved video and audio packets
up to the last frame it needs and converts only the K sampled frames, resized like
images; the soundtrack, when there is one, is mixed to mono and resampled like an audio
column.

Work is budgeted in pixels (--video-max-decoded-megapixels): the frames to decode times
the header's frame size is refused before the second pass, and the pixels of the frames
actually decoded stop it as soon as they pass the budget.

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
#: Default of --video-max-decoded-megapixels: width x height summed over the frames
#: decoded. A 2-minute 1080p clip at 60 fps is 14,900 megapixels and a 2-minute 4K clip
#: at 60 fps 59,700; a few-MB clip of 100,000 skip frames at 40 megapixels would be
#: 4,000,000 (most of an hour). FFmpeg decodes 1 to 5 gigapixels a second, so this bounds
#: one clip to about a minute of a core.
MAX_DECODED_MEGAPIXELS = 80_000.0
#: The highest soundtrack rate accepted, as for audio columns (mmcli.io.audio.MAX_RATE).
MAX_RATE = 768_000
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
    max_megapixels: float = MAX_DECODED_MEGAPIXELS,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode ``path`` into ((frames, size, size, 3) uint8, soundtrack float32 or None).

    The soundtrack is mono at ``sample_rate``, trimmed or zero-padded to ``seconds``; it
    is None when the clip has no audio stream or the stream holds no samples.

    ``max_megapixels`` bounds the decoding work, counted in pixels (deterministic, unlike
    time): the frames to decode times the header's frame size is checked before the
    decode, and the pixels of the frames actually decoded while it runs (a stream can
    grow its frames midway, or pack several in a packet).
    """
    if path.stat().st_size == 0:
        raise VideoRejected("empty file (0 bytes)")
    import av

    demuxer = _demuxer(path, av)
    try:
        n_frames, width, height = _count_frames(path, demuxer, max_seconds, av)
        wanted = sample_indices(n_frames, frames)
        # Decoding runs up to the last wanted frame: that many frames of the header's size.
        decoded = (int(wanted[-1]) + 1) * width * height
        if decoded > max_megapixels * 1e6:
            raise VideoRejected(
                f"decoding {int(wanted[-1]) + 1} frames of {width}x{height} is "
                f"{decoded / 1e6:.6g} megapixels, over the {max_megapixels:g} budget "
                "(raise --video-max-decoded-megapixels)"
            )
        budget = _Budget(int(max_megapixels * 1e6))
        return _decode(path, demuxer, wanted, size, sample_rate, seconds, budget, av)
    except av.FFmpegError as exc:
        raise VideoRejected(f"cannot decode video: {exc}") from None


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
    if container.streams.video[0].codec_context is None:
        raise VideoRejected("the video codec cannot be decoded")
    return container.streams.video[0]


def _count_frames(path: Path, demuxer: str, max_seconds: float, av: Any) -> tuple[int, int, int]:
    """(frames, width, height) of the clip, from its packets (not decoded) and header;
    refuses over-long clips."""
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
    return count, ctx.width, ctx.height


def _header_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE units
    return None


class _Budget:
    """Pixels decoded so far against the clip's budget; over it, the clip is refused."""

    def __init__(self, pixels: int):
        self.pixels, self.used, self.frames = pixels, 0, 0

    def spend(self, frame: Any) -> None:
        width, height = frame.width, frame.height
        if width * height > MAX_PIXELS:  # before converting it: one frame's memory
            raise VideoRejected(f"a frame is {width}x{height} pixels, over the {MAX_PIXELS} limit")
        self.used += width * height
        self.frames += 1
        if self.used > self.pixels:
            raise VideoRejected(
                f"decoding passed the {self.pixels / 1e6:g} megapixel budget after "
                f"{self.frames} frames (the last {width}x{height}; raise "
                "--video-max-decoded-megapixels)"
            )


class _Frames:
    """Collects the wanted frames, in decoding order; converts only those."""

    def __init__(self, wanted: np.ndarray, size: int, budget: _Budget):
        from av.video.reformatter import VideoReformatter

        self.wanted, self.size, self.budget = wanted, size, budget
        # Our own converter on one thread, not PyAV's per-thread one: that one keeps
        # swscale's slice threads, which a forked decoding worker inherits as a pool whose
        # threads are gone, and its first conversion then waits forever. (A worker is one
        # of ``cores`` processes already; more threads per conversion would not pay.)
        self.converter = VideoReformatter()
        self.out = np.zeros((len(wanted), size, size, 3), dtype=np.uint8)
        self.index, self.slot = 0, 0
        self.last: np.ndarray | None = None

    @property
    def done(self) -> bool:
        return self.slot == len(self.wanted)

    def add(self, frame: Any) -> None:
        self.budget.spend(frame)
        if not self.done and self.index == self.wanted[self.slot]:
            rgb = self.converter.reformat(frame, format="rgb24", threads=1).to_ndarray()
            # A phone's portrait clip is stored sideways with a display matrix: turn it
            # upright, as image columns are EXIF-rotated (the angle is counterclockwise).
            turns = round((frame.rotation or 0) / 90) % 4
            self.last = _resize(np.ascontiguousarray(np.rot90(rgb, turns)), self.size)
            while not self.done and self.wanted[self.slot] == self.index:
                self.out[self.slot] = self.last
                self.slot += 1
        self.index += 1

    def result(self) -> np.ndarray:
        if self.last is None:
            raise VideoRejected("no frame could be decoded")
        # The decoder gave fewer frames than there were packets (damaged frames dropped):
        # the remaining slots repeat the last decoded frame, as for a short clip.
        self.out[self.slot :] = self.last
        return self.out


class _Soundtrack:
    """The first ``seconds`` of an audio stream, mixed and resampled like audio columns."""

    def __init__(self, stream: Any, sample_rate: int, seconds: float, av: Any):
        if stream.codec_context is None:
            raise VideoRejected("the soundtrack's codec cannot be decoded")
        channels = stream.codec_context.channels
        if not 1 <= channels <= MAX_CHANNELS:
            raise VideoRejected(f"soundtrack has {channels} channels (at most {MAX_CHANNELS})")
        self.rate = stream.codec_context.sample_rate
        if not self.rate:
            raise VideoRejected("soundtrack has no sample rate")
        if self.rate > MAX_RATE:
            raise VideoRejected(f"soundtrack sample rate {self.rate} Hz (at most {MAX_RATE})")
        self.sample_rate, self.length = sample_rate, int(round(seconds * sample_rate))
        # Planar float at the stream's own rate; mixing and resampling are done as for
        # audio columns (mean of channels, soxr HQ) so both give the same samples.
        self.resampler = av.AudioResampler(format="fltp", rate=self.rate)
        self.need = int(np.ceil(seconds * self.rate)) + self.rate  # output plus a margin
        self.parts: list[np.ndarray] = []
        self.got = 0

    @property
    def done(self) -> bool:
        return self.got >= self.need

    def add(self, frame: Any) -> None:
        for planar in self.resampler.resample(frame):
            self.parts.append(planar.to_ndarray().mean(axis=0))
            self.got += planar.samples

    def result(self) -> np.ndarray | None:
        if self.got == 0:
            return None  # an audio stream with no samples: no soundtrack
        mono = np.concatenate(self.parts).astype(np.float32)
        if not np.isfinite(mono).all():
            raise VideoRejected("soundtrack contains NaN or infinite samples")
        if self.rate != self.sample_rate:
            import soxr

            mono = soxr.resample(mono, self.rate, self.sample_rate, quality="HQ")
        out = np.zeros(self.length, dtype=np.float32)
        out[: min(self.length, len(mono))] = mono[: self.length]
        return out


def _decode(
    path: Path,
    demuxer: str,
    wanted: np.ndarray,
    size: int,
    sample_rate: int,
    seconds: float,
    budget: _Budget,
    av: Any,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One pass over the interleaved packets: video up to the last wanted frame, audio up
    to ``seconds``; stops as soon as both have what they need, or when the video passes
    ``budget``."""
    with _open(path, demuxer, av) as container:
        video = _video_stream(container)
        frames = _Frames(wanted, size, budget)
        audio = container.streams.audio[0] if container.streams.audio else None
        sound = _Soundtrack(audio, sample_rate, seconds, av) if audio is not None else None
        streams = [video] if audio is None else [video, audio]
        for packet in container.demux(*streams):
            # A packet of size 0 is a stream's end: decoding it flushes that decoder.
            sink: Any = frames if packet.stream.index == video.index else sound
            if sink.done:
                continue
            for frame in packet.decode():
                sink.add(frame)
            if frames.done and (sound is None or sound.done):
                break
    return frames.result(), (None if sound is None else sound.result())


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    # The same resampling as image columns, so a frame and a still image look alike.
    img = Image.fromarray(rgb)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(img, dtype=np.uint8)
