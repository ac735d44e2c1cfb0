"""The whole chain on a tiny generated dataset: quality, reruns, determinism, predict, inspect."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import FAST_TRAIN, invoke, run_ok
from PIL import Image

from mmcli.errors import EXIT_DATA, EXIT_GATE

STAGES = ("prep", "feats", "fused", "model", "eval")


def _chain(manifest, work, *, method="concat", fail_under=None):
    run_ok("preprocess", manifest, "--out", work / "prep")
    run_ok("extract-features", work / "prep", "--out", work / "feats")
    run_ok("fuse", work / "feats", "--out", work / "fused", "--method", method)
    run_ok("train", work / "fused", "--out", work / "model", *FAST_TRAIN)
    return invoke(
        "evaluate",
        work / "model",
        work / "fused",
        "--out",
        work / "eval",
        *(["--fail-under", fail_under] if fail_under else []),
    )


def test_metrics_beat_the_majority_class(pipeline):
    metrics = json.loads((pipeline / "eval/metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["n"] > 0
    assert metrics["accuracy"] > metrics["majority_baseline_accuracy"] + 0.3
    assert metrics["macro_f1"] >= 0.8
    assert set(metrics["per_class"]) == {"cat", "dog", "owl"}
    assert np.array(metrics["confusion_matrix"]).sum() == metrics["n"]
    for name in ("report.md", "confusion_matrix.png", "predictions.parquet"):
        assert (pipeline / "eval" / name).stat().st_size > 0
    # The default (--model auto) keeps the candidate with the best score (cross-validated:
    # the val split is small); only a model trained by epochs has a training curve.
    record = json.loads((pipeline / "model/mmcli.json").read_text())
    chosen = [c for c in record["candidates"] if c["chosen"]]
    assert [c["name"] for c in record["candidates"]] == ["logistic", "late", "mlp", "ensemble"]
    assert len(chosen) == 1
    assert chosen[0]["cv_score"] == max(c["cv_score"] for c in record["candidates"])
    history = json.loads((pipeline / "model/history.json").read_text())
    if chosen[0]["name"] == "mlp":
        assert (pipeline / "model/curve.png").stat().st_size > 0
        assert history[0]["epoch"] == 1 and "val_loss" in history[0]
    else:
        assert history == [] and not (pipeline / "model/curve.png").exists()


def test_second_run_is_up_to_date_and_changes_nothing(pipeline, dataset):
    before = {s: (pipeline / s / "mmcli.json").stat().st_mtime_ns for s in STAGES}
    result = run_ok("preprocess", dataset, "--out", pipeline / "prep", "--json")
    assert json.loads(result.stdout)["status"] == "up-to-date"
    assert "up-to-date" in run_ok("fuse", pipeline / "feats", "--out", pipeline / "fused").stdout
    result = run_ok(
        "evaluate", pipeline / "model", pipeline / "fused", "--out", pipeline / "eval", "--json"
    )
    assert json.loads(result.stdout)["status"] == "up-to-date"
    after = {s: (pipeline / s / "mmcli.json").stat().st_mtime_ns for s in STAGES}
    assert before == after


def test_content_change_with_old_mtime_reruns(dataset_copy, tmp_path):
    work = tmp_path / "work"
    run_ok("preprocess", dataset_copy, "--out", work / "prep")
    image = dataset_copy.parent / "images/005.png"
    stat = image.stat()
    Image.new("RGB", (24, 24), (1, 2, 3)).save(image)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # hide the change from mtimes
    result = run_ok("preprocess", dataset_copy, "--out", work / "prep", "--json")
    assert json.loads(result.stdout)["status"] == "built"
    # a parameter change reruns too; --force reruns with nothing changed
    result = run_ok("preprocess", dataset_copy, "--out", work / "prep", "--seed", "5", "--json")
    assert json.loads(result.stdout)["status"] == "built"
    result = run_ok(
        "preprocess", dataset_copy, "--out", work / "prep", "--seed", "5", "--force", "--json"
    )
    assert json.loads(result.stdout)["status"] == "built"


def test_upstream_rebuilt_with_same_content_keeps_downstream_up_to_date(pipeline, dataset):
    run_ok("preprocess", dataset, "--out", pipeline / "prep", "--force")
    result = run_ok("extract-features", pipeline / "prep", "--out", pipeline / "feats", "--json")
    assert json.loads(result.stdout)["status"] == "up-to-date"


def test_two_runs_give_byte_identical_outputs(dataset, tmp_path, pipeline):
    other = tmp_path / "again"
    assert _chain(dataset, other).exit_code == 0
    for stage in STAGES:
        first = json.loads((pipeline / stage / "mmcli.json").read_text())
        second = json.loads((other / stage / "mmcli.json").read_text())
        assert first["outputs"] == second["outputs"], stage
        assert first["fingerprint"] == second["fingerprint"]


def test_weighted_sum_fusion_and_weights(pipeline):
    out = pipeline / "fused_ws"
    result = run_ok(
        "fuse",
        pipeline / "feats",
        "--out",
        out,
        "--method",
        "weighted-sum",
        "--width",
        "16",
        "--weights",
        "image=1,caption=0.5",
        "--json",
    )
    summary = json.loads(result.stdout)
    assert summary["width"] == 16 + 5  # common width plus one presence flag per input
    record = json.loads((out / "mmcli.json").read_text())
    assert record["weights"]["caption"] == 0.5 and record["weights"]["audio"] == 1.0
    run_ok("train", out, "--out", pipeline / "model_ws", *FAST_TRAIN)
    result = run_ok("evaluate", pipeline / "model_ws", out, "--out", pipeline / "eval_ws", "--json")
    assert json.loads(result.stdout)["metrics"]["accuracy"] > 0.6
    bad = invoke("fuse", pipeline / "feats", "--out", out, "--weights", "sound=2")
    assert bad.exit_code == 2 and "sound" in bad.stderr


def test_quality_gate_exit_code_and_json(pipeline):
    result = invoke(
        "evaluate",
        pipeline / "model",
        pipeline / "fused",
        "--out",
        pipeline / "eval",
        "--fail-under",
        "macro_f1=1.01",
        "--json",
    )
    assert result.exit_code == EXIT_GATE
    summary = json.loads(result.stdout)  # stdout holds the JSON summary and nothing else
    assert summary["gates"]["passed"] is False
    assert "macro_f1" in result.stderr and "below 1.01" in result.stderr
    ok = invoke(
        "evaluate",
        pipeline / "model",
        pipeline / "fused",
        "--out",
        pipeline / "eval",
        "--fail-under",
        "accuracy=0.5,macro_f1=0.5",
    )
    assert ok.exit_code == 0
    unknown = invoke(
        "evaluate",
        pipeline / "model",
        pipeline / "fused",
        "--out",
        pipeline / "eval",
        "--fail-under",
        "happiness=1",
    )
    assert unknown.exit_code == 2 and "macro_f1" in unknown.stderr


def test_predict_new_rows_with_the_fitted_chain(pipeline, dataset, tmp_path):
    df = pd.read_csv(dataset, dtype=str, keep_default_na=False).head(12).drop(columns=["label"])
    df.loc[3, "image"] = "images/gone.png"
    table = dataset.parent / "new_rows.csv"
    df.to_csv(table, index=False)
    out = tmp_path / "predictions.csv"
    result = run_ok("predict", pipeline / "model", table, "--out", out, "--json")
    assert json.loads(result.stdout)["rows"] == {"input": 12, "predicted": 11, "failed": 1}
    predictions = pd.read_csv(out)
    assert list(predictions["row"]) == list(range(12))
    assert predictions.loc[3, "prediction"] != predictions.loc[3, "prediction"]  # NaN
    assert "file not found" in predictions.loc[3, "error"]
    probs = predictions[["prob_cat", "prob_dog", "prob_owl"]].to_numpy()
    assert np.allclose(probs[[i for i in range(12) if i != 3]].sum(axis=1), 1.0)
    # the same rows through evaluate's path give the same probabilities
    evaluated = pd.read_parquet(pipeline / "eval/predictions.parquet").set_index("_row")
    for row in set(evaluated.index) & set(range(12)) - {3}:
        assert np.allclose(
            evaluated.loc[row, ["prob_cat", "prob_dog", "prob_owl"]].to_numpy(dtype=float),
            probs[row],
            atol=1e-5,
        )


def test_predict_requires_the_training_columns(pipeline, dataset, tmp_path):
    df = pd.read_csv(dataset).drop(columns=["audio"])
    df.to_csv(dataset.parent / "no_audio.csv", index=False)
    result = invoke(
        "predict", pipeline / "model", dataset.parent / "no_audio.csv", "--out", tmp_path / "p.csv"
    )
    assert result.exit_code == EXIT_DATA and "audio" in result.stderr


def test_inspect_shows_the_chain(pipeline):
    result = run_ok("inspect", pipeline / "eval", "--json")
    summary = json.loads(result.stdout)
    stages = [c["stage"] for c in summary["chain"]]
    assert stages == ["evaluate", "fuse", "extract-features", "preprocess", "manifest"]
    assert summary["chain"][-1]["path"].endswith("manifest.csv")
    human = run_ok("inspect", pipeline / "prep")
    assert "preprocess" in human.stdout and "rows.parquet" in human.stdout


def test_evaluate_refuses_data_from_another_chain(pipeline, tmp_path):
    other = tmp_path / "fused"
    shutil.copytree(pipeline / "fused", other)
    x = np.load(other / "X.npy")
    np.save(other / "X.npy", x + 1)
    record = json.loads((other / "mmcli.json").read_text())
    record["fingerprint"] = "0" * 64
    (other / "mmcli.json").write_text(json.dumps(record))
    result = invoke("evaluate", pipeline / "model", other, "--out", tmp_path / "eval")
    assert result.exit_code == EXIT_DATA and "not the data" in result.stderr


def test_regression_pipeline(dataset, tmp_path):
    work = tmp_path
    run_ok("preprocess", dataset, "--out", work / "prep", "--target", "weight")
    run_ok("extract-features", work / "prep", "--out", work / "feats")
    run_ok("fuse", work / "feats", "--out", work / "fused")
    run_ok("train", work / "fused", "--out", work / "model", "--loss", "huber", *FAST_TRAIN)
    result = run_ok("evaluate", work / "model", work / "fused", "--out", work / "eval", "--json")
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["mae"] < metrics["mean_baseline_mae"]
    assert (work / "eval/predicted_vs_actual.png").exists()
    # auto on a regression target: ridge, late, MLP and their mean, scored by R² in folds
    candidates = json.loads((work / "model/mmcli.json").read_text())["candidates"]
    assert [c["name"] for c in candidates] == ["logistic", "late", "mlp", "ensemble"]
    assert all(-10 < c["cv_score"] <= 1 for c in candidates)


def test_plain_progress_lines_in_logs_and_quiet(dataset, tmp_path):
    logged = run_ok("preprocess", dataset, "--out", tmp_path / "a")
    assert "preprocess: decoding media" in logged.stderr  # not a terminal: plain lines
    assert "\x1b[" not in logged.stderr  # no terminal escape codes in logs
    assert logged.stdout.startswith("preprocess: built")
    quiet = run_ok("preprocess", dataset, "--out", tmp_path / "b", "--quiet")
    assert quiet.stdout == "" and quiet.stderr == ""


def test_train_prints_each_epoch_with_losses_and_time_left(pipeline, tmp_path):
    logged = run_ok("train", pipeline / "fused", "--out", tmp_path / "m", "--epochs", "6",
                    "--patience", "50")  # fmt: skip
    lines = [line for line in logged.stderr.splitlines() if "training epochs" in line]
    # one per epoch in a log: for each of the five folds auto cross-validates on (the val
    # split is small), then for the fit it keeps
    folds = [line for line in lines if line.startswith("train: fold ")]
    assert len(folds) == 5 * 6 and folds[0].startswith("train: fold 1 of 5: training epochs 1/6")
    lines = [line for line in lines if line not in folds]
    assert len(lines) == 6
    assert lines[0].startswith("train: training epochs 1/6: train loss ")
    assert "val loss" in lines[0] and "macro_f1" in lines[0]
    assert "left (by epoch 6)" in lines[0] and "left" not in lines[-1]


def test_train_says_when_it_stopped_early(dataset_copy, tmp_path):
    df = pd.read_csv(dataset_copy)
    df["label"] = np.random.default_rng(0).permutation(df["label"].to_numpy())  # noise
    df.to_csv(dataset_copy, index=False)
    run_ok("preprocess", dataset_copy, "--out", tmp_path / "p")
    run_ok("extract-features", tmp_path / "p", "--out", tmp_path / "f")
    run_ok("fuse", tmp_path / "f", "--out", tmp_path / "x")
    result = run_ok("train", tmp_path / "x", "--out", tmp_path / "m", "--epochs", "300",
                    "--patience", "3", "--model", "mlp", "--json")  # fmt: skip
    summary = json.loads(result.stdout)
    assert summary["epochs"] < 300  # the val loss of noise labels stops improving
    assert summary["early_stopping"] == "stopped: no better val loss in 3 epochs"
    assert summary["epochs"] == summary["best_epoch"] + 3


def test_run_prints_each_stage_as_it_ends(dataset, tmp_path):
    """A stage's summary is printed when it ends: a later stage that fails leaves the
    earlier ones' lines (nothing at all was printed before)."""
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        f"manifest: {dataset}\nout: {tmp_path / 'work'}\npreprocess: {{val-fraction: 0}}\n"
        "train: {epochs: 3}\nevaluate: {split: val}\n"
    )
    result = invoke("run", pipeline)
    assert result.exit_code == EXIT_DATA and "the val split has no rows" in result.stderr
    heads = [line.split(" ->")[0] for line in result.stdout.splitlines() if " -> " in line]
    assert heads == [
        "preprocess: built",
        "extract-features: built",
        "fuse: built",
        "train: built",
    ]
    assert "run: train: training epochs 1/3: train loss" in result.stderr


@pytest.mark.parametrize(
    ("preprocess", "size"), [("", 224), ("preprocess: {image-size: 96}\n", 96)]
)
def test_a_pipeline_stores_images_at_its_pretrained_encoders_size(tmp_path, preprocess, size):
    from mmcli.stages import pipeline

    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "manifest: data.csv\n" + preprocess + "extract-features: {image: efficientnet-lite0}\n"
    )
    configs = dict(pipeline.plan(path))
    assert configs["preprocess"].image_size == size
    path.write_text("manifest: data.csv\nextract-features: {image: stats}\n")
    assert dict(pipeline.plan(path))["preprocess"].image_size is None  # the images' own size
