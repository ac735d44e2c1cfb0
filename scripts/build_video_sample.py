"""Build sample_data/video/: 60 short generated clips of moving shapes with a tone soundtrack.

Each clip (2 s, 10 fps, 48x48) shows one shape — circle, square or diamond, the class —
in a random colour, moving in a straight line and bouncing off the edges over a noisy
background. Most clips have a mono soundtrack: a tone whose pitch says the class, in
noise. The modalities are made weak on purpose, so that fusing them helps:

- in 45% of the clips the picture is poor (a small shape under heavy noise), in another
  45% the tone is drowned in noise (SNR about -19 dB); in the other 10% neither;
- 9 clips (15%) have no audio stream at all: a missing modality, not an error.

Containers: MP4 (H.264 + AAC) for most, WebM (VP9 + Opus) for every fourth clip.
Seeded: the same PyAV and FFmpeg build gives the same bytes. Run from the repository root:

    python scripts/build_video_sample.py
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "sample_data" / "video"
CLASSES = ["circle", "square", "diamond"]
PITCH = {"circle": 440.0, "square": 660.0, "diamond": 990.0}
PER_CLASS = 20
SIZE, FPS, SECONDS, RATE = 48, 10, 2.0, 16000


def frames_of(shape: str, rng: np.random.Generator, poor: bool) -> np.ndarray:
    n = int(FPS * SECONDS)
    radius = rng.uniform(3, 4.5) if poor else rng.uniform(6, 10)
    colour = tuple(int(c) for c in rng.integers(120, 256, size=3))
    pos = rng.uniform(radius, SIZE - radius, size=2)
    vel = rng.uniform(-3.5, 3.5, size=2)
    noise = 90 if poor else 25
    out = np.zeros((n, SIZE, SIZE, 3), np.uint8)
    for t in range(n):
        img = Image.new("RGB", (SIZE, SIZE), (30, 30, 40))
        draw = ImageDraw.Draw(img)
        x, y = pos
        r = radius
        if shape == "circle":
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        elif shape == "square":
            draw.rectangle([x - r, y - r, x + r, y + r], fill=colour)
        else:
            draw.polygon(
                [(x, y - r * 1.3), (x + r * 1.3, y), (x, y + r * 1.3), (x - r * 1.3, y)],
                fill=colour,
            )
        frame = np.asarray(img, np.float32) + rng.normal(0, noise, size=(SIZE, SIZE, 3))
        out[t] = np.clip(frame, 0, 255).astype(np.uint8)
        pos = pos + vel
        for axis in (0, 1):  # bounce off the edges
            if not radius <= pos[axis] <= SIZE - radius:
                vel[axis] = -vel[axis]
                pos[axis] = np.clip(pos[axis], radius, SIZE - radius)
    return out


def soundtrack(shape: str, rng: np.random.Generator, drowned: bool) -> np.ndarray:
    t = np.arange(int(SECONDS * RATE)) / RATE
    pitch = PITCH[shape] * rng.uniform(0.97, 1.03)
    tone = 0.05 * np.sin(2 * np.pi * pitch * t) * np.minimum(1.0, 20 * t)  # soft attack
    noise = rng.normal(0, 0.32 if drowned else 0.01, size=len(t))
    return np.clip(tone + noise, -1, 1).astype(np.float32)


def write(path: Path, frames: np.ndarray, audio: np.ndarray | None) -> None:
    webm = path.suffix == ".webm"
    # bitexact: no random Matroska segment id and no encoder version string in the file
    with av.open(str(path), "w", options={"fflags": "+bitexact"}) as out:
        video = out.add_stream("libvpx-vp9" if webm else "libx264", rate=FPS)
        video.width = video.height = SIZE
        video.pix_fmt = "yuv420p"
        video.thread_count = 1  # single-threaded encoders give the same bytes every run
        video.options = {"crf": "32", "b:v": "0"} if webm else {"crf": "28", "preset": "medium"}
        sound = None
        if audio is not None:
            rate = 48000 if webm else RATE
            sound = out.add_stream("libopus" if webm else "aac", rate=rate, layout="mono")
            sound.bit_rate = 32000
            if rate != RATE:
                import soxr

                audio = soxr.resample(audio, RATE, rate).astype(np.float32)
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None and audio is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)[None, :]
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = sound.rate
            frame.pts, frame.time_base = 0, Fraction(1, sound.rate)
            for packet in [*sound.encode(frame), *sound.encode()]:
                out.mux(packet)


def main() -> None:
    rng = np.random.default_rng(2024)
    if OUT.exists():
        shutil.rmtree(OUT / "clips", ignore_errors=True)
        (OUT / "manifest.csv").unlink(missing_ok=True)
    (OUT / "clips").mkdir(parents=True, exist_ok=True)
    labels = [c for c in CLASSES for _ in range(PER_CLASS)]
    order = rng.permutation(len(labels))
    n = len(labels)
    weak = rng.permutation(n)  # 45% poor picture, 45% drowned tone, 10% both fine
    poor = set(weak[: n * 45 // 100].tolist())
    drowned = set(weak[n * 45 // 100 : n * 90 // 100].tolist())
    silent = set(rng.choice(n, size=9, replace=False).tolist())
    rows = []
    for i, k in enumerate(order):
        label = labels[k]
        name = f"clips/v{i + 1:03d}.{'webm' if i % 4 == 3 else 'mp4'}"
        frames = frames_of(label, rng, i in poor)
        audio = None if i in silent else soundtrack(label, rng, i in drowned)
        write(OUT / name, frames, audio)
        rows.append({"id": f"v{i + 1:03d}", "clip": name, "label": label})
    pd.DataFrame(rows).to_csv(OUT / "manifest.csv", index=False)
    size = sum(p.stat().st_size for p in (OUT / "clips").iterdir())
    print(f"wrote {len(rows)} clips, {size / 1e6:.2f} MB, to {OUT}")


if __name__ == "__main__":
    main()
