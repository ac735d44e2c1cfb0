"""A manifest with a video column through every stage: features and end to end, evaluate's
contributions listing the visual and the acoustic part, predict on raw rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import run_ok
from videogen import make_video_dataset

PREP = ["--image-size", "16", "--video-frames", "4", "--audio-seconds", "1"]
PREP += ["--sample-rate", "8000"]


@pytest.fixture(scope="module")
def video_work(tmp_path_factory):
    data = make_video_dataset(tmp_path_factory.mktemp("vdata"), n=21, seed=3)
    work = tmp_path_factory.mktemp("vwork")
    run_ok("preprocess", data, "--out", work / "prep", *PREP, "--seed", "1")
    return data, work


def test_features_fuse_train_evaluate_predict(video_work):
    data, work = video_work
    result = run_ok(
        "extract-features", work / "prep", "--out", work / "feats", "--video-pool", "mean", "--json"
    )
    # stats: 207 per frame, mean over time; the soundtrack through MFCC
    assert json.loads(result.stdout)["encoders"] == {
        "clip": "stats (207)",
        "clip.audio": "mfcc (90)",
    }
    run_ok("fuse", work / "feats", "--out", work / "fused")
    run_ok("train", work / "fused", "--out", work / "model", "--epochs", "40")
    result = run_ok("evaluate", work / "model", work / "fused", "--out", work / "eval", "--json")
    assert json.loads(result.stdout)["metrics"]["macro_f1"] >= 0.6
    metrics = json.loads((work / "eval/metrics.json").read_text())
    assert set(metrics["contributions"]["columns"]) == {"clip", "clip.audio"}
    # The report shows each worst clip by its first frame and plays its soundtrack.
    for w in metrics["worst"]:
        assert w["media"]["clip"].endswith(".png")
        assert w["media"].get("clip.audio", ".wav").endswith(".wav")  # silent clips: none
    assert any("clip.audio" in w["media"] for w in metrics["worst"])
    assert "<audio controls" in (work / "eval/report.html").read_text()
    run_ok("predict", work / "model", data, "--out", work / "pred.csv")
    pred = pd.read_csv(work / "pred.csv")
    assert len(pred) == 21 and pred["error"].isna().all()
    assert (pred["prediction"] == pd.read_csv(data)["label"]).mean() >= 0.6
    # New raw rows: a corrupt clip gets an error naming it, the others a prediction.
    (data.parent / "clips/broken.mp4").write_bytes(b"\x00" * 64)
    rows = pd.DataFrame({"id": ["a", "b"], "clip": ["clips/000.mp4", "clips/broken.mp4"]})
    rows.to_csv(data.parent / "new.csv", index=False)
    run_ok("predict", work / "model", data.parent / "new.csv", "--out", work / "new.csv")
    new = pd.read_csv(work / "new.csv")
    assert new["prediction"][0] == "red" and pd.isna(new["error"][0])
    assert pd.isna(new["prediction"][1]) and new["error"][1].startswith("clip: cannot read")


@pytest.mark.parametrize("temporal", ["pool", "gru"])
def test_end_to_end_video_tower(video_work, temporal):
    data, work = video_work
    model = work / f"e2e-{temporal}"
    extra = ["--augment", "all"] if temporal == "gru" else []
    result = run_ok(
        "train",
        work / "prep",
        "--out",
        model,
        "--video-temporal",
        temporal,
        "--epochs",
        "4",
        "--conv-channels",
        "8,16",
        "--width",
        "16",
        *extra,
        "--json",
    )
    summary = json.loads(result.stdout)
    assert summary["model"] == "e2e" and summary["epochs"] == 4
    record = json.loads((model / "mmcli.json").read_text())
    towers = {c["name"]: c["tower"] for c in record["architecture"]["columns"]}
    assert towers == {"clip": "video-cnn", "clip.audio": "audio-cnn"}
    run_ok("evaluate", model, work / "prep", "--out", work / f"eval-{temporal}")
    metrics = json.loads((work / f"eval-{temporal}/metrics.json").read_text())
    assert set(metrics["contributions"]["columns"]) == {"clip", "clip.audio"}
    # The report shows each worst clip by its first frame and plays its soundtrack.
    for w in metrics["worst"]:
        assert w["media"]["clip"].endswith(".png")
        assert w["media"].get("clip.audio", ".wav").endswith(".wav")  # silent clips: none
    assert any("clip.audio" in w["media"] for w in metrics["worst"])
    assert "<audio controls" in (work / f"eval-{temporal}/report.html").read_text()
    run_ok("predict", model, data, "--out", work / f"pred-{temporal}.csv")
    assert len(pd.read_csv(work / f"pred-{temporal}.csv")) == 21
