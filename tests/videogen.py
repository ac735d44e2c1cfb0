"""Tiny video clips written with PyAV for tests: a coloured square moving over noise, with an
optional tone soundtrack. Each class has its own colour, direction and pitch."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

# Container extension -> (video codec, pixel format, audio codec)
CODECS = {
    ".mp4": ("libx264", "yuv420p", "aac"),
    ".mov": ("libx264", "yuv420p", "aac"),
    ".mkv": ("libx264", "yuv420p", "libopus"),
    ".webm": ("libvpx-vp9", "yuv420p", "libopus"),
    ".avi": ("mjpeg", "yuvj420p", "pcm_s16le"),
}
CLASSES = ["red", "green", "blue"]


def clip_frames(k: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(n, size, size, 3) uint8: a class-coloured square moving right, down or diagonally."""
    frames = rng.integers(0, 50, size=(n, size, size, 3)).astype(np.uint8)
    side = size // 3
    for t in range(n):
        step = int(round(t / max(n - 1, 1) * (size - side)))
        y, x = [(0, step), (step, 0), (step, step)][k]
        frames[t, y : y + side, x : x + side, k] = 230
    return frames


def write_clip(
    path: Path,
    frames: np.ndarray,
    fps: int = 8,
    audio: np.ndarray | None = None,
    rate: int = 16000,
) -> Path:
    """Write ``frames`` (n, H, W, 3) uint8 and an optional mono soundtrack to ``path``."""
    import av

    vcodec, pix_fmt, acodec = CODECS[path.suffix.lower()]
    with av.open(str(path), "w") as out:
        video = out.add_stream(vcodec, rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = pix_fmt
        if vcodec == "libx264":
            video.options = {"preset": "ultrafast", "tune": "zerolatency"}
        sound = None
        if audio is not None:
            arate = 48000 if acodec == "libopus" else rate
            sound = out.add_stream(acodec, rate=arate, layout="mono")
            if arate != rate:
                import soxr

                audio = soxr.resample(audio, rate, arate).astype(np.float32)
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            for packet in video.encode(vf):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None and audio is not None:
            samples = (np.clip(audio, -1, 1) * 32767).astype(np.int16)[None, :]
            af = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            af.sample_rate = sound.rate
            af.pts, af.time_base = 0, Fraction(1, sound.rate)
            for packet in sound.encode(af):
                out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def tone(k: int, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.4 * np.sin(2 * np.pi * (300 + 250 * k) * t) + 0.03 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def make_video_dataset(
    root: Path, n: int = 24, seed: int = 0, ext: str = ".mp4", silent_every: int = 5
) -> Path:
    """``n`` clips (1 s, 8 fps, 24x24) in 3 classes; every ``silent_every``-th has no sound."""
    rng = np.random.default_rng(seed)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        k = i % len(CLASSES)
        sound = None if i % silent_every == silent_every - 1 else tone(k, 1.0, 16000, rng)
        name = f"clips/{i:03d}{ext}"
        write_clip(root / name, clip_frames(k, 8, 24, rng), fps=8, audio=sound)
        rows.append({"id": f"v{i:03d}", "clip": name, "label": CLASSES[k]})
    path = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
