"""Decoding bombs: peak memory and time of ``mmcli preprocess`` with and without one bomb row.

    python benchmarks/bomb_memory.py [--rows 16] [--work DIR] [--ulimit-kb 3000000]
                                     [--source CHECKOUT] [--only audio|video]

Writes, once, into ``--work`` (default: a temporary folder) an audio and a video data
set of ``--rows`` ordinary files each, plus:

- audio bomb: a genuine FLAC of 600 s x 8 channels at 384 kHz (a few MB of constant
  frames) that decodes to 7.4 GB of float32, under the 16-channel and 600 s limits;
- video bomb: an MP4 of one 4096x4096 keyframe and 5,999 all-skip frames at 100 fps
  (0.3 MB, 60 s) that decodes to 94 gigapixels;
- large: an ordinary file at the top of what the defaults must accept (a 10-minute
  48 kHz stereo WAV; a 2-minute 1080p clip at 60 fps).

Each manifest (clean, clean + bomb, clean + large) is preprocessed in a fresh subprocess,
``--workers 1``, and the table shows its exit code, the rows rejected, the peak RSS of
the process tree (GNU ``/usr/bin/time``'s %M: the largest process) and the wall time.
With ``--ulimit-kb`` every run is also repeated as ``bash -c 'ulimit -v KB; ...'`` and a
MemoryError in its output is flagged. ``--source`` runs another checkout's mmcli (its
folder put first on PYTHONPATH), e.g. ``git archive HEAD | tar -x -C /tmp/before`` to
measure the code before a change.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _flac(path: Path, rate: int, channels: int, seconds: float, silent: bool) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    block = rate * 10
    with sf.SoundFile(path, "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        left = int(rate * seconds)
        while left > 0:
            n = min(block, left)
            if silent:  # constant subframes: a few bytes per 4096 frames
                f.write(np.zeros((n, channels), np.int16))
            else:
                f.write((3000 * rng.standard_normal((n, channels))).astype(np.int16))
            left -= n


def _wav(path: Path, rate: int, channels: int, seconds: float) -> None:
    import soundfile as sf

    rng = np.random.default_rng(1)
    data = (3000 * rng.standard_normal((int(rate * seconds), channels))).astype(np.int16)
    sf.write(path, data, rate, subtype="PCM_16")


def _skip_clip(path: Path, width: int, height: int, n: int, fps: int) -> None:
    """One keyframe then n - 1 copies of an all-skip P frame: n full frames to decode."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "keyint": "100000"}
        image = np.zeros((height, width, 3), np.uint8)  # the content costs nothing here
        packets = []
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            packets += list(stream.encode(frame))
        packets += list(stream.encode())
        key, skip = packets[0], bytes(packets[1])
        base, step = key.time_base, int(round(1 / (fps * key.time_base)))
        key.pts = key.dts = 0
        out.mux(key)
        for i in range(1, n):
            packet = av.Packet(skip)
            packet.stream, packet.time_base = stream, base
            packet.pts = packet.dts = i * step
            out.mux(packet)


def _ordinary(root: Path, kind: str, rows: int) -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from videogen import clip_frames, tone, write_clip

    rng = np.random.default_rng(3)
    names = []
    for i in range(rows):
        name = f"ok{i:02d}.{'flac' if kind == 'audio' else 'mp4'}"
        if not (root / name).exists():
            if kind == "audio":
                _flac(root / name, 44100, 2, 3.0, silent=False)
            else:
                frames = clip_frames(i % 3, 48, 64, rng)
                write_clip(root / name, frames, fps=24, audio=tone(i % 3, 2.0, 16000, rng))
        names.append(name)
    return names


def make_sets(work: Path, rows: int, kinds: list[str]) -> dict[tuple[str, str], Path]:
    """{(kind, variant): manifest} for variants clean, bomb and large."""
    manifests = {}
    for kind in kinds:
        root = work / kind
        root.mkdir(parents=True, exist_ok=True)
        names = _ordinary(root, kind, rows)
        extra = {"audio": ("bomb.flac", "large.wav"), "video": ("bomb.mp4", "large.mp4")}[kind]
        bomb, large = (root / n for n in extra)
        if not bomb.exists():
            started = time.perf_counter()
            if kind == "audio":
                _flac(bomb, 384_000, 8, 600.0, silent=True)
            else:
                _skip_clip(bomb, 4096, 4096, 6000, fps=100)
            print(
                f"wrote {bomb.name}: {bomb.stat().st_size / 1e6:.2f} MB in "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
        if not large.exists():
            if kind == "audio":
                _wav(large, 48000, 2, 600.0)
            else:
                _skip_clip(large, 1920, 1080, 7200, fps=60)
        labels = ["abc"[i % 3] for i in range(rows + 1)]
        for variant, last in (("clean", None), ("bomb", bomb.name), ("large", large.name)):
            cells = names + ([last] if last else [])
            table = pd.DataFrame({"m": cells, "label": labels[: len(cells)]})
            manifests[(kind, variant)] = root / f"{variant}.csv"
            table.to_csv(manifests[(kind, variant)], index=False)
    return manifests


def measure(argv: list[str], env: dict[str, str], ulimit_kb: int | None, cwd: Path) -> dict:
    """Run ``argv`` under GNU time; its exit code, peak RSS (MB, the largest process of
    its tree), wall time and whether its output mentions MemoryError.

    GNU time, not this process's ``wait4``: a child forked from a big parent starts with
    the parent's peak RSS counted as its own.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        argv = ["/usr/bin/time", "-o", report.name, "-f", "%M %e", *argv]
        if ulimit_kb is not None:
            argv = ["bash", "-c", f"ulimit -v {ulimit_kb}; exec {shlex.join(argv)}"]
        proc = subprocess.run(
            argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        fields = report.read().split()
    peak_kb, wall = float(fields[-2]), float(fields[-1])  # "Command exited..." may precede
    output = proc.stdout
    return {
        "rc": proc.returncode,
        "peak_mb": peak_kb / 1024,
        "wall_s": wall,
        "memory_error": b"MemoryError" in output,
        "tail": output.decode(errors="replace").strip().splitlines()[-1:] or [""],
    }


def rejected(out: Path) -> str:
    path = out / "rejected.parquet"
    if not path.exists():
        return "-"
    table = pd.read_parquet(path)
    return "; ".join(f"{r.row}: {r.reason[:70]}" for r in table.itertuples()) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--ulimit-kb", type=int, default=None)
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--only", choices=["audio", "video"], default=None)
    parser.add_argument("--variants", default="clean,bomb,large")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mmcli-bombs-"))
    kinds = [args.only] if args.only else ["audio", "video"]
    manifests = make_sets(work, args.rows, kinds)
    env = dict(os.environ)
    if args.source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(args.source), env.get("PYTHONPATH", "")])
    limits = [None] if args.ulimit_kb is None else [None, args.ulimit_kb]
    print(
        f"{'kind':6} {'variant':8} {'ulimit':>8} {'rc':>3} {'peak MB':>8} {'wall s':>7}  "
        "MemoryError  rejected"
    )
    for (kind, variant), manifest in manifests.items():
        if variant not in args.variants.split(","):
            continue
        for limit in limits:
            out = work / "out" / f"{kind}-{variant}-{limit or 'none'}"
            argv = [
                sys.executable,
                "-m",
                "mmcli",
                "preprocess",
                str(manifest),
                "--out",
                str(out),
                "--input",
                f"m:{kind}",
                "--workers",
                "1",
                "--force",
                "--quiet",
            ]
            # Run from the work folder: `python -m` puts the current folder first on
            # sys.path, which would shadow --source.
            r = measure(argv, env, limit, work)
            print(
                f"{kind:6} {variant:8} {limit or '-':>8} {r['rc']:>3} {r['peak_mb']:>8.0f} "
                f"{r['wall_s']:>7.2f}  {str(r['memory_error']):11}  {rejected(out)}"
                + ("" if r["rc"] == 0 else f"  [{r['tail'][0][:100]}]"),
                flush=True,
            )


if __name__ == "__main__":
    main()
