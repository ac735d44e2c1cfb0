"""preprocess with a video column: frames and soundtrack stored as two parts, silent clips
kept with the acoustic part missing, bad clips named by row, column and file."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import invoke, run_ok
from videogen import clip_frames, make_video_dataset, write_clip

from mmcli.errors import EXIT_DATA


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_video_dataset(tmp_path_factory.mktemp("video"), n=9, silent_every=3)


def _copy(videos, tmp_path):
    import shutil

    shutil.copytree(videos.parent, tmp_path / "data")
    return tmp_path / "data" / videos.name


def test_a_video_column_yields_frames_and_a_soundtrack(videos, tmp_path):
    result = run_ok(
        "preprocess",
        videos,
        "--out",
        tmp_path / "prep",
        "--image-size",
        "16",
        "--video-frames",
        "4",
        "--audio-seconds",
        "1",
        "--sample-rate",
        "8000",
        "--json",
    )
    summary = json.loads(result.stdout)
    assert summary["columns"] == {"clip": "video", "clip.audio": "audio"}
    assert summary["rows"]["kept"] == 9 and summary["problems"] == 0
    frames = np.load(tmp_path / "prep/arrays/clip.npy")
    sound = np.load(tmp_path / "prep/arrays/clip.audio.npy")
    assert frames.shape == (9, 4, 16, 16, 3) and frames.dtype == np.uint8
    assert sound.shape == (9, 8000) and sound.dtype == np.float32
    rows = pd.read_parquet(tmp_path / "prep/rows.parquet")
    assert rows["_present.clip"].all()
    silent = [i % 3 == 2 for i in range(9)]  # every third clip has no sound: kept, flagged
    assert rows["_present.clip.audio"].tolist() == [not s for s in silent]
    assert not sound[silent].any() and np.abs(sound[~np.array(silent)]).max() > 0.2
    record = json.loads((tmp_path / "prep/mmcli.json").read_text())
    audio_col = record["schema"]["columns"][1]
    assert audio_col == {"name": "clip.audio", "type": "audio", "source": "clip", "inferred": True}
    assert record["params"]["video_frames"] == 4


def test_a_corrupt_or_over_long_clip_is_rejected_with_its_reason(videos, tmp_path):
    manifest = _copy(videos, tmp_path)
    (manifest.parent / "clips/001.mp4").write_bytes(b"not a video at all" * 10)
    rng = np.random.default_rng(0)
    write_clip(manifest.parent / "clips/002.mp4", clip_frames(2, 40, 16, rng), fps=8)  # 5 s
    result = run_ok(
        "preprocess", manifest, "--out", tmp_path / "prep", "--video-max-seconds", "3", "--json"
    )
    assert json.loads(result.stdout)["rows"]["rejected"] == 2
    rejected = pd.read_parquet(tmp_path / "prep/rejected.parquet")
    assert rejected["row"].tolist() == [1, 2]
    assert rejected["column"].tolist() == ["clip", "clip"]
    assert rejected["file"].tolist() == ["clips/001.mp4", "clips/002.mp4"]
    assert "cannot read the video container" in rejected["reason"][0]
    assert "5.0 s long according to its header" in rejected["reason"][1]

    failed = invoke("preprocess", manifest, "--out", tmp_path / "p2", "--on-error", "fail")
    assert failed.exit_code == EXIT_DATA
    assert "row 1 (id v001), column 'clip', file 'clips/001.mp4'" in failed.stderr


def test_keep_marks_both_parts_of_a_bad_clip_missing(videos, tmp_path):
    manifest = _copy(videos, tmp_path)
    (manifest.parent / "clips/000.mp4").write_bytes(b"")
    run_ok("preprocess", manifest, "--out", tmp_path / "prep", "--on-error", "keep")
    rows = pd.read_parquet(tmp_path / "prep/rows.parquet")
    assert len(rows) == 9
    assert not rows["_present.clip"][0] and not rows["_present.clip.audio"][0]


def test_a_column_forced_to_video_is_read(videos, tmp_path):
    manifest = _copy(videos, tmp_path)
    df = pd.read_csv(manifest)
    for i, name in enumerate(df["clip"]):
        (manifest.parent / name).rename(manifest.parent / f"clips/{i:03d}.bin")
    df["clip"] = [f"clips/{i:03d}.bin" for i in range(len(df))]
    df.to_csv(manifest, index=False)
    result = run_ok(
        "preprocess", manifest, "--out", tmp_path / "prep", "--input", "clip:video", "--json"
    )
    summary = json.loads(result.stdout)
    assert summary["columns"]["clip"] == "video" and summary["rows"]["rejected"] == 0


def test_the_soundtrack_can_be_left_out_and_only_a_soundtrack_named_so(videos, tmp_path):
    result = run_ok(
        "preprocess", videos, "--out", tmp_path / "prep", "--input", "clip.audio:ignore", "--json"
    )
    assert json.loads(result.stdout)["columns"] == {"clip": "video", "clip.audio": "ignore"}
    assert not (tmp_path / "prep/arrays/clip.audio.npy").exists()
    bad = invoke("preprocess", videos, "--out", tmp_path / "p2", "--input", "label.audio:ignore")
    assert bad.exit_code == 2 and "not video soundtracks" in bad.stderr


def test_workers_forked_after_an_in_process_decode_do_not_hang(videos, tmp_path):
    # A process that decoded a clip itself (a notebook, a test run, predict) and then
    # forks decoding workers: PyAV's per-thread converter kept swscale's slice threads,
    # and a worker inheriting it waited forever on threads that fork did not copy.
    script = f"""
import sys
from pathlib import Path
from mmcli.io.video import load_video
from mmcli.cli import app
clip = next(Path({str(videos.parent)!r}).rglob("*.mp4"))
load_video(clip, frames=4, size=16, sample_rate=8000, seconds=1.0)
sys.argv = ["mmcli", "preprocess", {str(videos)!r}, "--out", {str(tmp_path / "prep")!r},
            "--workers", "2", "--image-size", "16", "--video-frames", "4"]
app()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.load(tmp_path / "prep/arrays/clip.npy").shape == (9, 4, 16, 16, 3)
