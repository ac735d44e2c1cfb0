"""End-to-end networks (CNN/RNN towers) and learned fusion: every fusion, determinism,
missing modalities, imbalance options, regression, and evaluate/predict on them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import invoke, run_ok

from mmcli.errors import EXIT_USAGE

# fmt: off
QUICK = ["--epochs", "3", "--width", "16", "--hidden", "16", "--rnn-hidden", "8",
         "--embed-dim", "8", "--batch-size", "32", "--conv-channels", "8,16"]
# fmt: on


@pytest.fixture(scope="module")
def prep(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("neural") / "prep"
    run_ok(
        "preprocess",
        dataset,
        "--out",
        out,
        "--image-size",
        "16",
        "--sample-rate",
        "8000",
        "--audio-seconds",
        "0.5",
    )
    return out


def _train(prep, out, *extra):
    result = run_ok("train", prep, "--out", out, *QUICK, *extra, "--json")
    return json.loads(result.stdout)


@pytest.mark.parametrize("fusion", ["concat", "weighted-sum", "gated", "attention"])
def test_e2e_every_fusion_trains_evaluates_and_predicts(prep, dataset, tmp_path, fusion):
    summary = _train(prep, tmp_path / "model", "--fusion", fusion)
    assert summary["model"] == "e2e" and summary["fusion"] == fusion
    record = json.loads((tmp_path / "model/mmcli.json").read_text())
    towers = [c["tower"] for c in record["architecture"]["columns"]]
    assert towers == ["image-cnn", "audio-cnn", "text-rnn", "dense", "category"]
    assert record["architecture"]["columns"][2]["vocab"][:2] == ["<pad>", "<unk>"]
    if fusion == "weighted-sum":
        weights = summary["fusion_weights"]
        assert set(weights) == {"image", "audio", "caption", "weight", "colour"}
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-4)
    result = run_ok("evaluate", tmp_path / "model", prep, "--out", tmp_path / "eval", "--json")
    assert json.loads(result.stdout)["rows"] > 0
    rows = pd.read_csv(dataset, dtype=str, keep_default_na=False).head(6)
    rows.to_csv(dataset.parent / f"new_{fusion}.csv", index=False)
    run_ok(
        "predict",
        tmp_path / "model",
        dataset.parent / f"new_{fusion}.csv",
        "--out",
        tmp_path / "p.csv",
    )
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert predicted["prediction"].notna().all()
    evaluated = pd.read_parquet(tmp_path / "eval/predictions.parquet").set_index("_row")
    for row in set(evaluated.index) & set(range(6)):
        assert np.allclose(
            evaluated.loc[row, ["prob_cat", "prob_dog", "prob_owl"]].to_numpy(float),
            predicted.loc[row, ["prob_cat", "prob_dog", "prob_owl"]].to_numpy(float),
            atol=1e-5,
        )


def test_e2e_learns_the_tiny_task(prep, tmp_path):
    _train(prep, tmp_path / "model", "--epochs", "25", "--patience", "25", "--seed", "1")
    result = run_ok(
        "evaluate", tmp_path / "model", prep, "--out", tmp_path / "eval", "--json", "--split", "all"
    )
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["accuracy"] > metrics["majority_baseline_accuracy"] + 0.3


def test_same_seed_same_bytes_any_workers_and_other_seed_differs(prep, tmp_path):
    args = ["--augment", "all", "--modality-dropout", "0.2"]
    _train(prep, tmp_path / "a", *args, "--workers", "0")
    _train(prep, tmp_path / "b", *args, "--workers", "2")
    _train(prep, tmp_path / "c", *args, "--seed", "9")
    weights = [(tmp_path / n / "model.safetensors").read_bytes() for n in "abc"]
    assert weights[0] == weights[1]
    assert weights[0] != weights[2]
    history = [json.loads((tmp_path / n / "history.json").read_text()) for n in "ab"]
    assert history[0] == history[1]


def test_missing_modalities_train_and_predict(dataset_copy, tmp_path):
    df = pd.read_csv(dataset_copy, dtype=str, keep_default_na=False)
    df.loc[::4, "image"] = ""
    df.loc[1::4, "caption"] = ""
    df.loc[2::4, "audio"] = ""
    df.to_csv(dataset_copy, index=False)
    run_ok(
        "preprocess",
        dataset_copy,
        "--out",
        tmp_path / "prep",
        "--image-size",
        "16",
        "--sample-rate",
        "8000",
        "--audio-seconds",
        "0.5",
    )
    rows = pd.read_parquet(tmp_path / "prep/rows.parquet")
    assert not rows["_present.image"].all() and not rows["_present.caption"].all()
    for fusion in ("weighted-sum", "attention"):
        _train(
            tmp_path / "prep", tmp_path / fusion, "--fusion", fusion, "--modality-dropout", "0.3"
        )
        new = df.head(8).copy()
        new["image"] = ""  # image absent for every row at prediction time
        new.to_csv(dataset_copy.parent / "no_images.csv", index=False)
        run_ok(
            "predict",
            tmp_path / fusion,
            dataset_copy.parent / "no_images.csv",
            "--out",
            tmp_path / f"{fusion}.csv",
        )
        predicted = pd.read_csv(tmp_path / f"{fusion}.csv")
        assert predicted["prediction"].notna().all() and predicted["error"].isna().all()
        probs = predicted.filter(like="prob_").to_numpy()
        assert np.isfinite(probs).all()


def test_imbalance_options_and_lstm(prep, tmp_path):
    summary = _train(
        prep,
        tmp_path / "m",
        "--class-weight",
        "balanced",
        "--sampler",
        "weighted",
        "--augment",
        "minority",
        "--rnn",
        "lstm",
    )
    assert summary["status"] == "built"
    record = json.loads((tmp_path / "m/mmcli.json").read_text())
    assert record["architecture"]["columns"][2]["rnn"] == "lstm"
    assert record["params"]["sampler"] == "weighted"
    assert record["architecture"]["columns"][0]["channels"] == [8, 16]  # depth 2


def test_e2e_regression(dataset, tmp_path):
    run_ok(
        "preprocess",
        dataset,
        "--out",
        tmp_path / "prep",
        "--target",
        "weight",
        "--image-size",
        "16",
        "--sample-rate",
        "8000",
        "--audio-seconds",
        "0.5",
    )
    _train(tmp_path / "prep", tmp_path / "model", "--loss", "huber", "--epochs", "6")
    result = run_ok(
        "evaluate", tmp_path / "model", tmp_path / "prep", "--out", tmp_path / "eval", "--json"
    )
    assert {"mae", "rmse", "r2"} <= set(json.loads(result.stdout)["metrics"])


def test_learned_fusion_on_fuse_artifact_blocks(pipeline, tmp_path):
    for fusion in ("gated", "attention", "weighted-sum"):
        summary = _train(pipeline / "fused", tmp_path / fusion, "--fusion", fusion)
        assert summary["model"] == "mlp" and summary["fusion"] == fusion
        run_ok("evaluate", tmp_path / fusion, pipeline / "fused", "--out", tmp_path / f"e_{fusion}")
    record = json.loads((tmp_path / "gated/mmcli.json").read_text())
    assert [c["name"] for c in record["architecture"]["columns"]] == [
        "image",
        "audio",
        "caption",
        "weight",
        "colour",
    ]


def test_model_and_data_kinds_must_match(prep, pipeline, tmp_path):
    wrong = invoke("train", prep, "--out", tmp_path / "m", "--model", "mlp")
    assert wrong.exit_code == EXIT_USAGE and "--model e2e" in wrong.stderr
    wrong = invoke("train", pipeline / "fused", "--out", tmp_path / "m", "--model", "e2e")
    assert wrong.exit_code == EXIT_USAGE and "preprocess artifact" in wrong.stderr


def test_augmentation_is_on_by_default_for_e2e_only(prep, pipeline, tmp_path):
    _train(prep, tmp_path / "e2e", "--epochs", "2")
    _train(prep, tmp_path / "plain", "--epochs", "2", "--augment", "none")
    run_ok("train", pipeline / "fused", "--out", tmp_path / "head", "--model", "mlp",
           "--epochs", "2")  # fmt: skip
    params = {
        n: json.loads((tmp_path / n / "mmcli.json").read_text())["params"]["augment"]
        for n in ("e2e", "plain", "head")
    }
    assert params == {"e2e": "all", "plain": "none", "head": "none"}
    weights = [(tmp_path / n / "model.safetensors").read_bytes() for n in ("e2e", "plain")]
    assert weights[0] != weights[1]  # the augmented rows changed what was learnt
