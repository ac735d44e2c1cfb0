"""Stored sizes follow the data: images, sample rate and clip length from the files'
headers, capped, unless a flag sets them."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import soundfile as sf
from conftest import run_ok
from PIL import Image

from mmcli.artifacts.records import Column
from mmcli.config import PreprocessConfig
from mmcli.stages.sizes import PROBE_FILES, stored_sizes


def _prep(dataset, out, *flags):
    run_ok("preprocess", dataset, "--out", out, *flags)
    schema = json.loads((out / "mmcli.json").read_text())["schema"]
    images, audio = np.load(out / "arrays/image.npy"), np.load(out / "arrays/audio.npy")
    return schema, images.shape, audio.shape


def test_the_data_sets_the_stored_sizes_and_flags_win(dataset, tmp_path):
    # The test set's images are 24 px, its clips 1 s at 8 kHz.
    schema, images, audio = _prep(dataset, tmp_path / "auto")
    assert (schema["image_size"], schema["sample_rate"], schema["audio_seconds"]) == (24, 8000, 1.0)
    assert images == (90, 24, 24, 3) and audio == (90, 8000)
    flags = ["--image-size", "32", "--sample-rate", "16000", "--audio-seconds", "2"]
    schema, images, audio = _prep(dataset, tmp_path / "given", *flags)
    assert (schema["image_size"], schema["sample_rate"], schema["audio_seconds"]) == (
        32,
        16000,
        2.0,
    )
    assert images == (90, 32, 32, 3) and audio == (90, 32000)


def _table(root, images, clips):
    """A manifest of images (side) and clips ((rate, seconds)) written under ``root``."""
    rows = []
    for i, (side, (rate, seconds)) in enumerate(zip(images, clips, strict=True)):
        Image.new("RGB", (side, max(8, side // 2)), (i, 0, 0)).save(root / f"{i}.png")
        sf.write(root / f"{i}.wav", np.zeros(int(rate * seconds), np.float32), rate)
        rows.append({"image": f"{i}.png", "audio": f"{i}.wav", "label": "ab"[i % 2]})
    return pd.DataFrame(rows)


COLUMNS = [Column(name=n, type=n, inferred=True) for n in ("image", "audio")]


def _sizes(df, root, **given):
    cfg = PreprocessConfig(manifest=root / "m.csv", **given)
    s = stored_sizes(df, COLUMNS, cfg, root)
    return s.image_size, s.sample_rate, s.audio_seconds


def test_largest_side_highest_rate_longest_clip_each_capped(tmp_path):
    df = _table(tmp_path, [20, 40], [(8000, 0.5), (11025, 1.234)])
    assert _sizes(df, tmp_path) == (40, 11025, 1.24)  # 1.234 s rounded up to 10 ms
    df = _table(tmp_path, [300, 16], [(44100, 3.0), (8000, 0.2)])
    assert _sizes(df, tmp_path) == (64, 16000, 2.0)  # the caps: what the flags default to
    assert _sizes(df, tmp_path, image_size=128, sample_rate=44100) == (128, 44100, 2.0)


def test_unreadable_files_and_paths_outside_the_data_folder_are_not_probed(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    df = _table(data, [20, 20], [(8000, 0.5), (8000, 0.5)])
    Image.new("RGB", (500, 500)).save(tmp_path / "outside.png")  # larger, but outside
    (data / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    os.mkfifo(data / "fifo.wav")  # opening it would block: never opened
    extra = [
        {"image": "../outside.png", "audio": "fifo.wav", "label": "a"},
        {"image": "garbage.png", "audio": "missing.wav", "label": "b"},
    ]
    df = pd.concat([df, pd.DataFrame(extra)], ignore_index=True)
    assert _sizes(df, data) == (20, 8000, 0.5)
    nothing = pd.DataFrame([extra[1]])
    assert _sizes(nothing, data) == (64, 16000, 2.0)  # nothing readable: the caps


def test_a_sample_of_the_files_is_read_spread_over_the_table(tmp_path, monkeypatch):
    import mmcli.stages.sizes as sizes

    read = []
    monkeypatch.setattr(sizes, "_image_side", lambda path: read.append(path) or 20)
    df = pd.DataFrame({"image": [f"{i}.png" for i in range(1000)], "audio": None, "label": "a"})
    for i in range(1000):
        (tmp_path / f"{i}.png").touch()
    assert _sizes(df, tmp_path)[0] == 20
    assert len(read) == PROBE_FILES
    assert read[0].endswith("/0.png") and int(read[-1].rsplit("/", 1)[1][:-4]) > 900
