"""Video decoding speed: mmcli's preprocess against PyAV alone on the same generated clips.

    python benchmarks/video.py [--clips 12] [--seconds 4] [--fps 30] [--width 320] [--height 240]

Writes H.264 + AAC MP4 clips to a temporary folder, then times, over all clips:

- PyAV alone, decoding every frame (the floor: no conversion at all);
- PyAV alone, decoding every frame and converting it to RGB (what a naive loader does);
- mmcli's ``load_video`` (packet count, decoding up to the last sampled frame, K frames
  converted and resized, soundtrack decoded and resampled);
- mmcli's whole preprocess stage on a manifest of the clips (hashing, arrays, artifact).

"frames/s" is the clips' frames divided by the time, so rows compare directly; the
ratio is PyAV-alone-decode's time over each row's time. Both wall time and this process's
CPU time (all its threads) are shown, best of N each: on a shared machine the CPU time
is the steadier of the two.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def make_clips(root: Path, n: int, seconds: float, fps: int, width: int, height: int) -> list:
    from videogen import tone, write_clip

    rng = np.random.default_rng(0)
    paths = []
    frames_n = int(seconds * fps)
    for i in range(n):
        # A moving gradient with noise: cheap to make, not trivially compressible.
        y, x = np.mgrid[0:height, 0:width]
        frames = np.empty((frames_n, height, width, 3), np.uint8)
        for t in range(frames_n):
            base = (x + y + 4 * t + 40 * i) % 256
            frames[t] = np.stack([base, (base * 2) % 256, 255 - base], axis=-1)
        frames = np.clip(frames + rng.integers(0, 16, frames.shape), 0, 255).astype(np.uint8)
        path = root / f"clip{i:02d}.mp4"
        write_clip(path, frames, fps=fps, audio=tone(i % 3, seconds, 16000, rng))
        paths.append(path)
    return paths


def pyav_decode(paths: list, rgb: bool) -> int:
    import av

    count = 0
    for path in paths:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                if rgb:
                    frame.to_ndarray(format="rgb24")
                count += 1
    return count


def mmcli_load(paths: list, k: int) -> None:
    from mmcli.io.video import load_video

    for path in paths:
        load_video(path, k, 64, 16000, 2.0)


def mmcli_preprocess(root: Path, paths: list, k: int) -> None:
    from mmcli.config import PreprocessConfig
    from mmcli.stages import preprocess

    manifest = root / "manifest.csv"
    labels = [("a", "b", "c")[i % 3] for i in range(len(paths))]
    pd.DataFrame({"clip": [p.name for p in paths], "label": labels}).to_csv(manifest, index=False)
    cfg = PreprocessConfig(manifest=manifest, out=root / "prep", video_frames=k)
    preprocess.run(cfg, force=True)


def timed(fn, repeat: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds) over ``repeat`` runs."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--frames", type=int, default=8, help="K, frames sampled per clip")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_clips(root, args.clips, args.seconds, args.fps, args.width, args.height)
        frames = pyav_decode(paths, rgb=False)
        rows = [
            ("PyAV alone: decode every frame", lambda: pyav_decode(paths, rgb=False)),
            ("PyAV alone: decode + RGB every frame", lambda: pyav_decode(paths, rgb=True)),
            (
                f"mmcli load_video (K={args.frames}, 64x64, sound)",
                lambda: mmcli_load(paths, args.frames),
            ),
            (
                f"mmcli preprocess stage (K={args.frames})",
                lambda: mmcli_preprocess(root, paths, args.frames),
            ),
        ]
        times = [(name, timed(fn, args.repeat)) for name, fn in rows]
    print(
        f"{args.clips} clips, {args.seconds:g} s at {args.fps} fps, {args.width}x{args.height} "
        f"H.264 + AAC: {frames} frames; best of {args.repeat}"
    )
    head = ("what", "wall s", "frames/s", "ratio", "CPU s", "frames/CPU-s", "ratio (CPU)")
    print("| {:<44} | {:>7} | {:>8} | {:>6} | {:>6} | {:>12} | {:>11} |".format(*head))
    print("|" + "|".join("-" * (w + 2) for w in (44, 7, 8, 6, 6, 12, 11)) + "|")
    base_wall, base_cpu = times[0][1]
    for name, (wall, cpu) in times:
        print(
            f"| {name:<44} | {wall:>7.3f} | {frames / wall:>8.0f} | {base_wall / wall:>5.2f}x "
            f"| {cpu:>6.3f} | {frames / cpu:>12.0f} | {base_cpu / cpu:>10.2f}x |"
        )


if __name__ == "__main__":
    main()
