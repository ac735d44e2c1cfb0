"""preprocess on good and bad data: every problem named by row, column and file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from conftest import invoke, run_ok
from PIL import Image

from mmcli.errors import EXIT_DATA, EXIT_MISSING, EXIT_USAGE


def _manifest(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_builds_artifact_with_fixed_shapes(dataset, tmp_path):
    result = run_ok(
        "preprocess", dataset, "--out", tmp_path / "prep", "--image-size", "32", "--json"
    )
    summary = json.loads(result.stdout)
    assert summary["status"] == "built"
    assert summary["rows"]["kept"] == 90 and summary["rows"]["rejected"] == 0
    assert summary["columns"] == {
        "image": "image",
        "audio": "audio",
        "caption": "text",
        "weight": "number",
        "colour": "category",
    }
    images = np.load(tmp_path / "prep/arrays/image.npy")
    audio = np.load(tmp_path / "prep/arrays/audio.npy")
    assert images.shape == (90, 32, 32, 3) and images.dtype == np.uint8
    assert audio.shape == (90, 8000) and audio.dtype == np.float32  # 1 s at 8 kHz, as recorded
    rows = pd.read_parquet(tmp_path / "prep/rows.parquet")
    assert list(rows["_row"]) == list(range(90))
    # stratified split: each class appears in every split
    counts = rows.groupby(["_split", "_target"]).size().unstack()
    assert counts.shape == (3, 3) and (counts > 0).all().all()
    record = json.loads((tmp_path / "prep/mmcli.json").read_text())
    assert record["schema"]["target"]["classes"] == ["cat", "dog", "owl"]
    assert record["inputs"]["files"]["count"] == 180


def test_bad_rows_are_rejected_with_reasons(dataset_copy, tmp_path):
    root = dataset_copy.parent
    df = _manifest(dataset_copy)
    (root / "images/000.png").write_bytes((root / "images/000.png").read_bytes()[:100])  # truncated
    df.loc[1, "image"] = "images/nope.png"  # missing file
    df.loc[2, "image"] = "../outside.png"  # escapes the data folder
    (root.parent / "outside.png").write_bytes((root / "images/003.png").read_bytes())
    (root / "audio/004.wav").write_bytes(b"RIFF....WAVEfmt garbage")  # corrupt audio
    df.loc[5, "weight"] = "heavy"  # not a number
    df.loc[6, "label"] = ""  # missing target
    df.loc[7, "caption"] = ""  # empty text: a missing modality, not an error
    df.to_csv(dataset_copy, index=False)
    result = run_ok("preprocess", dataset_copy, "--out", tmp_path / "prep", "--json")
    summary = json.loads(result.stdout)
    assert summary["rows"]["rejected"] == 6
    rejected = pd.read_parquet(tmp_path / "prep/rejected.parquet").set_index("row")
    assert sorted(rejected.index) == [0, 1, 2, 4, 5, 6]  # row 3 image is fine; row 7 is kept
    assert "cannot decode image" in rejected.loc[0, "reason"]
    assert rejected.loc[0, "file"] == "images/000.png"
    assert "file not found" in rejected.loc[1, "reason"]
    assert "outside the data folder" in rejected.loc[2, "reason"]
    assert rejected.loc[4, "column"] == "audio"
    assert "not a number" in rejected.loc[5, "reason"]
    assert "target value is missing" in rejected.loc[6, "reason"]
    rows = pd.read_parquet(tmp_path / "prep/rows.parquet").set_index("_row")
    assert not rows.loc[7, "_present.caption"] and rows.loc[8, "_present.caption"]


def test_on_error_fail_names_row_column_and_file(dataset_copy, tmp_path):
    df = _manifest(dataset_copy)
    df.loc[4, "image"] = "images/missing.png"
    df.to_csv(dataset_copy, index=False)
    result = invoke("preprocess", dataset_copy, "--out", tmp_path / "prep", "--on-error", "fail")
    assert result.exit_code == EXIT_DATA
    assert "row 4" in result.stderr and "'image'" in result.stderr
    assert "images/missing.png" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "prep").exists()


def test_on_error_keep_marks_the_value_missing(dataset_copy, tmp_path):
    df = _manifest(dataset_copy)
    df.loc[4, "image"] = "images/missing.png"
    df.to_csv(dataset_copy, index=False)
    run_ok("preprocess", dataset_copy, "--out", tmp_path / "prep", "--on-error", "keep")
    rows = pd.read_parquet(tmp_path / "prep/rows.parquet").set_index("_row")
    assert len(rows) == 90 and not rows.loc[4, "_present.image"]
    rejected = pd.read_parquet(tmp_path / "prep/rejected.parquet")
    assert rejected["action"].tolist() == ["kept, value missing"]
    images = np.load(tmp_path / "prep/arrays/image.npy")
    assert images[4].max() == 0  # zero-filled, flagged missing; never a made-up image


def test_na_strings_in_text_are_data(dataset_copy, tmp_path):
    df = _manifest(dataset_copy)
    df.loc[0, "caption"], df.loc[1, "caption"], df.loc[2, "caption"] = "NA", "None", "null"
    df.loc[3, "weight"] = "NA"  # in a number column it means missing
    df.to_csv(dataset_copy, index=False)
    run_ok("preprocess", dataset_copy, "--out", tmp_path / "prep")
    rows = pd.read_parquet(tmp_path / "prep/rows.parquet").set_index("_row")
    assert [rows.loc[i, "caption"] for i in range(3)] == ["NA", "None", "null"]
    assert not rows.loc[3, "_present.weight"] and np.isnan(rows.loc[3, "weight"])


def test_parquet_and_jsonl_manifests_give_the_same_rows(dataset, tmp_path):
    df = _manifest(dataset)
    df["weight"] = df["weight"].astype(float)
    df.to_parquet(dataset.parent / "m.parquet")
    df.to_json(dataset.parent / "m.jsonl", orient="records", lines=True)
    outs = []
    for name in ("manifest.csv", "m.parquet", "m.jsonl"):
        out = tmp_path / name
        run_ok("preprocess", dataset.parent / name, "--out", out)
        outs.append(out)
    for other in outs[1:]:
        pd.testing.assert_frame_equal(
            pd.read_parquet(outs[0] / "rows.parquet"), pd.read_parquet(other / "rows.parquet")
        )
        for f in ("arrays/image.npy", "arrays/audio.npy"):
            assert (outs[0] / f).read_bytes() == (other / f).read_bytes()


def test_split_column_is_used(dataset_copy, tmp_path):
    df = _manifest(dataset_copy)
    df["split"] = [
        "test" if i % 5 == 0 else "Validation" if i % 5 == 1 else "train" for i in range(len(df))
    ]
    df.loc[2, "split"] = "holdout"
    df.to_csv(dataset_copy, index=False)
    run_ok("preprocess", dataset_copy, "--out", tmp_path / "prep")
    rows = pd.read_parquet(tmp_path / "prep/rows.parquet").set_index("_row")
    assert rows.loc[0, "_split"] == "test" and rows.loc[1, "_split"] == "val"
    assert 2 not in rows.index  # an unknown split value rejects the row


def test_input_override_and_regression_target(dataset_copy, tmp_path):
    result = run_ok(
        "preprocess",
        dataset_copy,
        "--out",
        tmp_path / "prep",
        "--target",
        "weight",
        "--input",
        "label:category",
        "--input",
        "colour:ignore",
        "--json",
    )
    summary = json.loads(result.stdout)
    assert summary["task"] == "regression"
    assert summary["columns"]["colour"] == "ignore" and summary["columns"]["label"] == "category"


def test_user_errors_exit_codes(dataset, tmp_path):
    missing = invoke("preprocess", tmp_path / "nope.csv", "--out", tmp_path / "p")
    assert missing.exit_code == EXIT_MISSING and "no such file" in missing.stderr
    no_target = invoke("preprocess", dataset, "--out", tmp_path / "p", "--target", "species")
    assert no_target.exit_code == EXIT_DATA and "no target column 'species'" in no_target.stderr
    bad_flag = invoke("preprocess", dataset, "--out", tmp_path / "p", "--image-size", "2")
    assert bad_flag.exit_code == EXIT_USAGE and "image-size" in bad_flag.stderr
    header_only = tmp_path / "empty.csv"
    header_only.write_text("image,label\n")
    assert invoke("preprocess", header_only, "--out", tmp_path / "p").exit_code == EXIT_DATA


def test_exif_rotation_and_palette_images(dataset_copy, tmp_path):
    root = dataset_copy.parent
    img = Image.new("RGB", (20, 10), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 10))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    img.save(root / "images/000.png", exif=exif)
    Image.new("P", (16, 16), 3).save(root / "images/001.png")
    run_ok("preprocess", dataset_copy, "--out", tmp_path / "prep", "--image-size", "8")
    images = np.load(tmp_path / "prep/arrays/image.npy")
    # after rotation the blue half is on top
    assert images[0, 0, 4, 2] > 200 and images[0, 7, 4, 0] > 200
    assert images[1].shape == (8, 8, 3)
