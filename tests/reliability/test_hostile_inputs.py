"""Poisoned images, audio and manifests: each a clear per-row reason or a clean refusal."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
from conftest import cli
from PIL import Image

from mmcli.errors import EXIT_DATA


def _wav_header(channels: int, rate: int, data_bytes: int) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


@pytest.fixture()
def poisoned(dataset_copy):
    """Each bad row gets one hostile file; returns (manifest, {row: expected reason})."""
    root = dataset_copy.parent
    df = pd.read_csv(dataset_copy, dtype=str, keep_default_na=False)
    expect = {}

    def image(row, name, reason, write):
        write(root / "images" / name)
        df.loc[row, "image"] = f"images/{name}"
        expect[row] = reason

    def audio(row, name, reason, content):
        (root / "audio" / name).write_bytes(content)
        df.loc[row, "audio"] = f"audio/{name}"
        expect[row] = reason

    image(0, "empty.png", "empty file", lambda p: p.write_bytes(b""))
    image(
        1, "bomb.png", "over the 40 megapixel limit", lambda p: Image.new("1", (8000, 8000)).save(p)
    )
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    image(
        2,
        "anim.gif",
        "animated image (2 frames)",
        lambda p: frames[0].save(p, save_all=True, append_images=frames[1:]),
    )
    image(3, "icon.ico", "not allowed", lambda p: Image.new("RGB", (8, 8)).save(p))
    image(4, "text.png", "cannot decode image", lambda p: p.write_text("not an image"))
    (root.parent / "secret.png").write_bytes((root / "images/010.png").read_bytes())
    image(
        5,
        "escape.png",
        "outside the data folder",
        lambda p: p.symlink_to(root.parent / "secret.png"),
    )
    audio(6, "chans.wav", "channels", _wav_header(1000, 8000, 0) + b"\0" * 4000)
    audio(7, "long.wav", "truncated", _wav_header(1, 8000, 8000 * 2 * 3600 * 10))
    audio(8, "header.wav", "truncated", _wav_header(1, 8000, 16000))
    audio(
        9,
        "mp3inwav.wav",
        "cannot read audio header",
        _wav_header(1, 8000, 100).replace(struct.pack("<H", 1), struct.pack("<H", 0x55), 1)
        + b"\0" * 100,
    )
    nan = np.array([0.1, np.nan] * 500, np.float32).tobytes()
    float_header = _wav_header(1, 8000, len(nan)).replace(
        struct.pack("<HH", 1, 1), struct.pack("<HH", 3, 1), 1
    )
    float_header = float_header[:34] + struct.pack("<H", 32) + float_header[36:]
    float_header = float_header[:28] + struct.pack("<IH", 8000 * 4, 4) + float_header[34:]
    audio(10, "nan.wav", "NaN", float_header + nan)
    df.loc[11, "image"] = "../../etc/passwd"
    expect[11] = "outside the data folder"
    df.loc[12, "id"] = df.loc[13, "id"]  # row 13 keeps its id; row 12 repeats it... later row
    expect[13] = "duplicate id"
    df.to_csv(dataset_copy, index=False)
    return dataset_copy, expect


def test_every_hostile_file_is_a_clear_per_row_reason(poisoned, tmp_path):
    manifest, expect = poisoned
    result = cli("preprocess", manifest, "--out", tmp_path / "prep")
    assert result.returncode == 0, result.stderr
    rejected = pd.read_parquet(tmp_path / "prep/rejected.parquet")
    reasons = dict(zip(rejected["row"], rejected["reason"], strict=True))
    for row, reason in expect.items():
        assert row in reasons and reason in reasons[row], (row, reasons.get(row))
    assert "Traceback" not in result.stderr


def test_on_error_fail_stops_at_the_first_bad_row(poisoned, tmp_path):
    manifest, _ = poisoned
    result = cli("preprocess", manifest, "--out", tmp_path / "prep", "--on-error", "fail")
    assert result.returncode == EXIT_DATA
    assert "row 13" in result.stderr and "duplicate id" in result.stderr  # ids checked first
    assert not (tmp_path / "prep").exists()


def test_max_errors_turns_too_many_rejections_into_a_failure(poisoned, tmp_path):
    manifest, expect = poisoned
    over = cli("preprocess", manifest, "--out", tmp_path / "a", "--max-errors", "0.05")
    assert over.returncode == EXIT_DATA and "over --max-errors 0.05" in over.stderr
    assert not (tmp_path / "a").exists()
    within = cli("preprocess", manifest, "--out", tmp_path / "b", "--max-errors", "20")
    assert within.returncode == 0, within.stderr


def test_bad_manifests(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("image,label\ncaf\xe9.png,a\n".encode("latin-1"))
    result = cli("preprocess", latin, "--out", tmp_path / "p")
    assert result.returncode == EXIT_DATA and "not UTF-8" in result.stderr
    header = tmp_path / "header.csv"
    header.write_text("image,label\n")
    result = cli("preprocess", header, "--out", tmp_path / "p")
    assert result.returncode == EXIT_DATA and "no rows" in result.stderr
    assert "Traceback" not in result.stderr


def test_formula_labels_are_neutralised_in_written_csv(dataset_copy, tmp_path):
    df = pd.read_csv(dataset_copy, dtype=str, keep_default_na=False)
    df["label"] = df["label"].map({"cat": "=HYPERLINK(1)", "dog": "+dog", "owl": "owl"})
    df.to_csv(dataset_copy, index=False)
    work = tmp_path
    for args in (
        ("preprocess", dataset_copy, "--out", work / "prep"),
        ("extract-features", work / "prep", "--out", work / "feats"),
        ("fuse", work / "feats", "--out", work / "fused"),
        ("train", work / "fused", "--out", work / "model", "--epochs", "3"),
    ):
        assert cli(*args).returncode == 0
    result = cli("predict", work / "model", dataset_copy, "--out", work / "p.csv")
    assert result.returncode == 0, result.stderr
    text = (work / "p.csv").read_text()
    assert "'=HYPERLINK(1)" in text and "\n=" not in text and ",=" not in text
    assert ",+dog" not in text
