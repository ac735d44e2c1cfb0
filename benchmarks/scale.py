"""Speed and memory of every stage against the raw decoders, at two data set sizes.

    python benchmarks/scale.py [--rows 1000 20000] [--work /tmp/mmcli-bench] [--workers N]

For each size it generates a seeded data set (``generate.py``), then prints per stage:
rows/s, wall time and peak memory (PSS: resident memory with shared pages split between
processes, summed over the stage's process and its workers, sampled every 10 ms in a
second run, since reading it slows the stage down).
Beside preprocess and extract-features it prints the raw limit on the same files,
measured with all cores:

- images: Pillow alone decodes, converts to RGB and resizes each file;
- audio: soundfile alone decodes each file and soxr resamples it, as mmcli does;
- audio features: librosa alone computes the same MFCC statistics from the decoded clips;

and the ratio mmcli/limit (the limits are measured before and after the stages, and the
faster kept). A row of preprocess costs one image plus one audio file, so its
limit is ``1 / (1/images + 1/audio)`` rows/s. Then it times the incremental cases: a
no-op rerun, 100 changed files, and 100 added rows (each checked byte-identical to a
clean build, the added rows with new content; each command starts once the artifacts it
replaced are deleted and the page cache is flushed), prints what writing the stored
arrays alone costs on this disk, and the peak-memory ratio between the largest and smallest size.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate  # noqa: E402

IMAGE_SIZE, SAMPLE_RATE, SECONDS = 64, 16000, 2.0
SIZES = ["--image-size", "64", "--sample-rate", "16000", "--audio-seconds", "2"]
STAGES = ("preprocess", "extract-features", "fuse", "train", "evaluate")


# -- raw limits: the decoders alone, one task per chunk of files, all cores ---------------
def _images(paths: list[str]) -> int:
    from PIL import Image

    for p in paths:
        with Image.open(p) as img:
            img.load()
            np.asarray(img.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR))
    return len(paths)


def _audio(paths: list[str]) -> int:
    import soundfile as sf
    import soxr

    length = int(SAMPLE_RATE * SECONDS)
    for p in paths:
        data, rate = sf.read(p, dtype="float32", always_2d=True)
        y = soxr.resample(data.mean(axis=1), rate, SAMPLE_RATE, quality="HQ")
        np.pad(y[:length], (0, max(0, length - len(y))))
    return len(paths)


def _mfcc(paths: list[str]) -> int:
    import librosa
    import soundfile as sf
    import soxr

    clips = []
    for p in paths:  # decoding is not timed separately: subtract nothing, be generous
        data, rate = sf.read(p, dtype="float32", always_2d=True)
        clips.append(soxr.resample(data.mean(axis=1), rate, SAMPLE_RATE, quality="HQ"))
    # The filter bank once, not per clip (librosa.feature.melspectrogram rebuilds it each
    # call): the fastest plain-librosa way, so the limit is a high bar.
    mel_basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=512, n_mels=40)
    start = time.perf_counter()
    for y in clips:
        y = np.pad(y, (0, max(0, int(SAMPLE_RATE * SECONDS) - len(y))))
        power = np.abs(librosa.stft(y, n_fft=512, hop_length=160)) ** 2
        db = librosa.power_to_db(mel_basis @ power)
        mfcc = librosa.feature.mfcc(S=db, n_mfcc=20)
        librosa.feature.delta(mfcc, mode="nearest")
        mag = np.sqrt(power)
        librosa.feature.spectral_centroid(S=mag, sr=SAMPLE_RATE)
        librosa.feature.spectral_bandwidth(S=mag, sr=SAMPLE_RATE)
        librosa.feature.spectral_rolloff(S=mag, sr=SAMPLE_RATE)
        librosa.feature.zero_crossing_rate(y, frame_length=512, hop_length=160)
        librosa.feature.rms(S=mag, frame_length=512)
    return -int((time.perf_counter() - start) * 1e6)  # microseconds of feature work


def raw_rate(fn, paths: list[str], workers: int) -> float:
    chunks = [paths[i : i + 64] for i in range(0, len(paths), 64)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(fn, chunks[:workers]))  # warm the workers (imports) before timing
        start = time.perf_counter()
        results = list(pool.map(fn, chunks))
        wall = time.perf_counter() - start
    if results and results[0] < 0:  # feature time only, summed over workers
        return len(paths) / (-sum(results) / 1e6 / workers)
    return len(paths) / wall


def raw_limits(images: list[str], audio: list[str], workers: int) -> dict[str, float]:
    return {
        "images": raw_rate(_images, images, workers),
        "audio": raw_rate(_audio, audio, workers),
        # a rate per clip: the first 4,000 clips measure it as well as all of them
        "mfcc": raw_rate(_mfcc, audio[:4000], workers),
    }


# -- running mmcli ------------------------------------------------------------------------
def _settle(args: list[str]) -> None:
    """Wait for the background deletion of artifacts replaced before (it would slow this
    command down without being part of it), then flush the page cache: a command is not
    timed while the kernel still writes out what the one before it stored (gigabytes,
    after a full preprocess)."""
    folder = Path(args[args.index("--out") + 1]).parent
    deadline = time.monotonic() + 120
    while any(folder.glob(".*.old-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.sync()


def _run(args: list[str], poll: bool) -> tuple[float, float]:
    """(wall seconds, peak PSS in MiB of the process tree, 0 unless ``poll``)."""
    _settle(args)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmcli", *args, "--quiet"], stderr=subprocess.PIPE, text=True
    )
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        if poll:
            try:
                # PSS: pages shared by forked workers are split between them, not counted twice.
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
            except psutil.Error:
                pass
        time.sleep(0.01)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"mmcli {' '.join(args)} failed ({proc.returncode}): {proc.stderr.read()}")
    return wall, peak / 2**20


def measure(args: list[str], memory: bool = True) -> tuple[float, float]:
    """(wall seconds, peak PSS in MiB of the process tree) of one mmcli command.

    Timed in a run of its own: reading PSS (/proc/PID/smaps) costs ~50 ms of CPU per poll
    and made preprocess at 20,000 rows 30% slower. The memory is read in a second,
    ``--force``d run of the same command.
    """
    wall, _ = _run(args, poll=False)
    return wall, (_run([*args, "--force"], poll=True)[1] if memory else 0.0)


def write_seconds(nbytes: int, where: Path) -> float:
    """Seconds to write ``nbytes`` to a new file through the page cache, 8 MiB at a time:
    the floor under any stage that stores that much, which the raw decoders never pay."""
    block = np.ones(8 << 20, np.uint8)
    path = where / "write-floor.bin"
    start = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(nbytes // block.nbytes):
            f.write(block)
        f.write(block[: nbytes % block.nbytes])
    wall = time.perf_counter() - start
    path.unlink()
    return wall


def stage_args(stage: str, manifest: Path, work: Path, extra: list[str]) -> list[str]:
    return {
        # The sizes the raw limits decode to (the data's own would be 32 px, 1 s, 8 kHz).
        "preprocess": ["preprocess", str(manifest), "--out", str(work / "prep"), *SIZES],
        "extract-features": ["extract-features", str(work / "prep"), "--out", str(work / "feats")],
        "fuse": ["fuse", str(work / "feats"), "--out", str(work / "fused")],
        "train": ["train", str(work / "fused"), "--out", str(work / "model"), "--epochs", "30"],
        "evaluate": [
            "evaluate",
            str(work / "model"),
            str(work / "fused"),
            "--out",
            str(work / "eval"),
        ],
    }[stage] + (extra if stage in ("preprocess", "extract-features") else [])


def digest(artifact: Path) -> str:
    """Hash of an artifact's data files (everything but its record)."""
    h = hashlib.sha256()
    for path in sorted(p for p in artifact.rglob("*") if p.is_file() and p.name != "mmcli.json"):
        h.update(path.relative_to(artifact).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _change(path: Path) -> None:
    """New content for an image or WAV file: one pixel or one sample differs."""
    if path.suffix == ".wav":
        import soundfile as sf

        samples, rate = sf.read(path, dtype="int16")
        samples[0] = samples[0] ^ 1
        sf.write(path, samples, rate, subtype="PCM_16")
        return
    from PIL import Image

    pixels = np.asarray(Image.open(path)).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(path)


def incremental(data: Path, manifest: Path, work: Path, extra: list[str]) -> list[tuple]:
    """Reruns of preprocess + extract-features: no change, 100 changed files, 100 new rows.

    Returns (case, seconds) pairs and a last (case, bool): whether the result is
    byte-identical to a clean build. The data set is restored afterwards.
    """

    def both(table: Path) -> float:
        return sum(measure(stage_args(s, table, work, extra), memory=False)[0] for s in STAGES[:2])

    results = [("no-op rerun", both(manifest))]
    df = pd.read_csv(manifest)
    changed = [
        data / df.loc[i, "image"]
        for i in np.random.default_rng(1).choice(len(df), 100, replace=False)
    ]
    backup = {p: p.read_bytes() for p in changed}
    try:
        for path in changed:
            _change(path)
        results.append(("100 files changed", both(manifest)))
        grown = data / "manifest-grown.csv"
        new = df.sample(100, random_state=2).copy()
        for j, index in enumerate(new.index):
            for col in ("image", "audio"):
                src = data / new.loc[index, col]
                dst = src.with_name(f"added{j:03d}{src.suffix}")
                shutil.copy(src, dst)
                _change(dst)  # new content, so the rows must be decoded, not reused
                new.loc[index, col] = str(dst.relative_to(data))
            new.loc[index, "id"] = f"added{j:03d}"
        pd.concat([df, new]).to_csv(grown, index=False)
        results.append(("100 rows added", both(grown)))
        clean = work / "clean"
        for stage in STAGES[:2]:
            measure(stage_args(stage, grown, clean, extra), memory=False)
        same = all(digest(work / a) == digest(clean / a) for a in ("prep", "feats"))
        results.append(("byte-identical to a clean build", same))
    finally:
        for path, content in backup.items():
            path.write_bytes(content)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmcli-bench"))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-incremental", action="store_true")
    args = parser.parse_args()
    extra = ["--workers", str(args.workers)]
    peaks: dict[int, dict[str, float]] = {}
    for n in args.rows:
        data = args.work / f"data-{n}"
        if not (data / "manifest.csv").is_file():
            print(f"generating {n} rows in {data}", flush=True)
            generate(data, n)
        manifest = data / "manifest.csv"
        # a pristine copy: the incremental run edits files and the manifest
        work = args.work / f"run-{n}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        df = pd.read_csv(manifest)
        images = [str(data / p) for p in df["image"]]
        audio = [str(data / p) for p in df["audio"]]

        # Measured before and after the stages, the faster kept: this machine's speed
        # drifts by tens of percent over minutes.
        before = raw_limits(images, audio, args.workers)
        peaks[n], walls = {}, {}
        for stage in STAGES:
            walls[stage], peaks[n][stage] = measure(stage_args(stage, manifest, work, extra))
        after = raw_limits(images, audio, args.workers)
        limits = {k: max(before[k], after[k]) for k in before}
        limit = {
            "preprocess": 1 / (1 / limits["images"] + 1 / limits["audio"]),
            "extract-features": limits["mfcc"],
        }
        print(f"\n## {n} rows, {args.workers} workers")
        print("raw limits (rows/s): " + ", ".join(f"{k} {v:,.0f}" for k, v in limits.items()))
        print(f"{'stage':<18}{'rows/s':>10}{'wall s':>9}{'peak MiB':>10}{'limit':>9}{'ratio':>7}")
        for stage in STAGES:
            wall, lim = walls[stage], limit.get(stage)
            print(
                f"{stage:<18}{n / wall:>10,.0f}{wall:>9.2f}{peaks[n][stage]:>10.0f}"
                + (f"{lim:>9,.0f}{n / wall / lim:>7.0%}" if lim else "")
            )
        files = list((work / "prep" / "arrays").glob("*.npy"))
        stored = sum(p.stat().st_size for p in files)
        # Zero tails (audio padding) are holes in the files: written is what is allocated.
        written = min(stored, sum(p.stat().st_blocks * 512 for p in files))
        floor = write_seconds(written, work)
        with_write = 1 / (1 / limit["preprocess"] + floor / n)
        print(
            f"preprocess stored {stored / 1e9:.2f} GB of arrays, {written / 1e9:.2f} GB of it "
            f"written (the rest holes); writing that much alone took {floor:.2f} s here. "
            f"Limit with that write: {with_write:,.0f} rows/s, "
            f"mmcli/limit {n / walls['preprocess'] / with_write:.0%}"
        )
        if not args.no_incremental:
            full = walls["preprocess"] + walls["extract-features"]
            print(f"incremental (preprocess + extract-features; full run {full:.2f} s):")
            for what, value in incremental(data, manifest, work, extra):
                if isinstance(value, bool):
                    print(f"  {what}: {'yes' if value else 'NO'}")
                else:
                    print(f"  {what:<20}{value:7.2f} s {value / full:6.1%} of the full run")
    if len(peaks) > 1:
        small, large = min(peaks), max(peaks)
        print(f"\npeak memory {large} rows / {small} rows:")
        for stage in STAGES:
            print(f"  {stage:<18}{peaks[large][stage] / peaks[small][stage]:.2f}x")


if __name__ == "__main__":
    main()
