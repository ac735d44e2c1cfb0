"""Metrics against hand-computed values, gates, and reproducible, non-blank PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmcli import plots
from mmcli.errors import UsageError
from mmcli.metrics import check_gates, classification_metrics, parse_gates, regression_metrics


def test_classification_by_hand():
    # true 0,0,1,1,2,2; predicted 0,1,1,1,2,0 -> 4/6 right
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    proba = np.full((6, 3), 0.1)
    proba[np.arange(6), pred] = 0.8
    m = classification_metrics(y, proba, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    # per-class F1: a: p=1/2 r=1/2 -> .5; b: p=2/3 r=1 -> .8; c: p=1 r=1/2 -> 2/3
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3, abs=1e-6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["majority_baseline_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert m["per_class"]["b"]["recall"] == 1.0 and m["roc_auc"] is not None


def test_roc_auc_undefined_when_a_class_is_absent_and_binary_case():
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]])
    assert classification_metrics(np.array([0, 1]), proba, ["a", "b", "c"])["roc_auc"] is None
    binary = classification_metrics(
        np.array([0, 1, 1]), np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]), ["n", "y"]
    )
    assert binary["roc_auc"] == 1.0 and binary["accuracy"] == pytest.approx(2 / 3, abs=1e-6)


def test_regression():
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert m["mae"] == pytest.approx(2 / 3, abs=1e-6)
    assert m["rmse"] == pytest.approx(np.sqrt(4 / 3), abs=1e-6)
    assert m["r2"] == pytest.approx(1 - 4 / 2, abs=1e-6)
    assert regression_metrics(np.array([2.0, 2.0]), np.array([1.0, 3.0]))["r2"] is None


def test_gates():
    gates = parse_gates(["macro_f1=0.5", "accuracy=0.9,rmse=1"])
    assert gates == [("macro_f1", 0.5), ("accuracy", 0.9), ("rmse", 1.0)]
    metrics = {"macro_f1": 0.6, "accuracy": 0.8, "rmse": 1.5, "n": 3}
    assert check_gates(metrics, gates) == ["accuracy = 0.8 is below 0.9", "rmse = 1.5 is above 1"]
    for bad in (["macro_f1"], ["macro_f1=high"], ["=3"]):
        with pytest.raises(UsageError, match="expected METRIC=NUMBER"):
            parse_gates(bad)
    with pytest.raises(UsageError, match="accuracy, macro_f1, rmse"):
        check_gates(metrics, [("happiness", 1.0)])


def _png(path):
    with Image.open(path) as img:
        assert img.format == "PNG"
        arr = np.asarray(img.convert("L"), dtype=float)
    assert arr.std() > 0  # not blank
    return arr.shape


def test_plots_are_valid_and_byte_identical(tmp_path):
    history = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_score": 0.1 * e}
        for e in range(1, 6)
    ]
    for name in ("a", "b"):
        plots.confusion_matrix_png([[3, 1], [0, 4]], ["x", "y"], tmp_path / f"cm_{name}.png")
        plots.training_curve_png(history, tmp_path / f"curve_{name}.png", best_epoch=4)
        plots.predicted_vs_actual_png([1, 2, 3], [1.5, 2, 2.5], tmp_path / f"pva_{name}.png")
    for kind in ("cm", "curve", "pva"):
        assert _png(tmp_path / f"{kind}_a.png")[0] >= 300
        assert (tmp_path / f"{kind}_a.png").read_bytes() == (
            tmp_path / f"{kind}_b.png"
        ).read_bytes()
