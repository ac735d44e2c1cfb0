"""Metrics against numbers worked out by hand, and the --fail-under gates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmcli.errors import DataError, UsageError
from mmcli.metrics import (
    check_gates,
    classification_metrics,
    headline_score,
    parse_gates,
    regression_metrics,
)


def _one_hot_proba(pred: list[int], k: int) -> np.ndarray:
    """Probabilities whose argmax is ``pred``: 0.8 on the predicted class, the rest shared."""
    proba = np.full((len(pred), k), 0.2 / (k - 1))
    proba[np.arange(len(pred)), pred] = 0.8
    return proba


def test_three_classes_by_hand():
    # true      0 0 1 1 2 2
    # predicted 0 1 1 1 2 0  -> 4 of 6 right: accuracy 2/3
    # class a: tp 1, fp 1 (row 6), fn 1 (row 2) -> p 1/2, r 1/2, f1 1/2
    # class b: tp 2, fp 1 (row 2), fn 0         -> p 2/3, r 1,   f1 0.8
    # class c: tp 1, fp 0, fn 1 (row 6)         -> p 1,   r 1/2, f1 2/3
    # macro f1 = (1/2 + 0.8 + 2/3) / 3 = 0.655556; every support is 2, so weighted = macro
    # balanced accuracy = mean recall = (1/2 + 1 + 1/2) / 3 = 2/3
    # log loss: every true class gets 0.8 or 0.1 -> -(4 ln 0.8 + 2 ln 0.1) / 6
    y = np.array([0, 0, 1, 1, 2, 2])
    m = classification_metrics(y, _one_hot_proba([0, 1, 1, 1, 2, 0], 3), ["a", "b", "c"])
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3, abs=1e-6)
    assert m["weighted_f1"] == pytest.approx(m["macro_f1"], abs=1e-6)
    assert m["log_loss"] == pytest.approx(-(4 * np.log(0.8) + 2 * np.log(0.1)) / 6, abs=1e-6)
    assert m["per_class"] == {
        "a": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        "b": {"precision": 0.666667, "recall": 1.0, "f1": 0.8, "support": 2},
        "c": {"precision": 1.0, "recall": 0.5, "f1": 0.666667, "support": 2},
    }
    # rows true, columns predicted
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["majority_baseline_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert 0 < m["roc_auc"] <= 1


def test_values_are_plain_python_and_json_round_trips():
    m = classification_metrics(
        np.array([0, 1, 1], dtype=np.int64),
        _one_hot_proba([0, 1, 0], 2).astype(np.float32),
        ["n", "y"],
    )
    assert json.loads(json.dumps(m)) == m
    for name in ("accuracy", "macro_f1", "log_loss", "roc_auc", "majority_baseline_accuracy"):
        assert type(m[name]) is float
    assert type(m["n"]) is int and type(m["confusion_matrix"][0][0]) is int
    assert type(m["per_class"]["y"]["support"]) is int


def test_binary_uses_the_positive_column():
    # positive scores 0.2, 0.7, 0.4 for labels 0, 1, 1: the 0 ranks below both 1s -> AUC 1,
    # although the argmax gets row 3 wrong (accuracy 2/3).
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    m = classification_metrics(np.array([0, 1, 1]), proba, ["no", "yes"])
    assert m["roc_auc"] == 1.0
    assert m["accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert m["majority_baseline_accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert m["confusion_matrix"] == [[1, 0], [1, 1]]


def test_absent_class_gives_no_auc_and_still_a_full_confusion_matrix():
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]])
    m = classification_metrics(np.array([0, 1]), proba, ["a", "b", "c"])
    assert m["roc_auc"] is None
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["balanced_accuracy"] == 1.0  # mean recall over the classes that have rows
    assert m["log_loss"] > 0  # labels=range(k) keeps it defined


def test_single_class_in_binary_gives_no_auc():
    m = classification_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]]), ["n", "y"])
    assert m["roc_auc"] is None and m["accuracy"] == 0.5


def test_unnormalised_scores_give_no_auc_instead_of_crashing():
    scores = np.array([[0.5, 0.2, 0.1], [0.1, 0.5, 0.1], [0.1, 0.1, 0.6]])
    with pytest.warns(UserWarning):  # sklearn's own "do not sum to one" for log_loss
        m = classification_metrics(np.array([0, 1, 2]), scores, ["a", "b", "c"])
    assert m["roc_auc"] is None and m["accuracy"] == 1.0


@pytest.mark.parametrize(
    "y, proba, message",
    [
        ([], np.zeros((0, 2)), "no rows"),
        ([0, 1], np.full((2, 3), 1 / 3), "shape"),
        ([0, 2], np.full((2, 2), 0.5), "class indices"),
        ([0, 1], np.array([[np.nan, 1.0], [0.5, 0.5]]), "NaN"),
    ],
)
def test_bad_classification_inputs_are_data_errors(y, proba, message):
    with pytest.raises(DataError, match=message):
        classification_metrics(np.array(y, dtype=int), proba, ["a", "b"])


def test_regression_by_hand():
    # errors 0, 0, 2 -> MAE 2/3, RMSE sqrt(4/3); SS_res 4, SS_tot 2 -> R² = 1 - 4/2 = -1
    # mean of y is 2 -> baseline errors 1, 0, 1 -> MAE 2/3
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert m == {
        "n": 3,
        "mae": pytest.approx(2 / 3, abs=1e-6),
        "rmse": pytest.approx(np.sqrt(4 / 3), abs=1e-6),
        "r2": pytest.approx(-1.0, abs=1e-6),
        "mean_baseline_mae": pytest.approx(2 / 3, abs=1e-6),
    }
    assert json.loads(json.dumps(m)) == m


def test_r2_is_none_when_undefined():
    assert regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"] is None  # constant target
    one = regression_metrics([2.0], [2.5])
    assert one["r2"] is None and one["mae"] == 0.5 and one["mean_baseline_mae"] == 0.0


def test_regression_length_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="3 targets but 2 predictions"):
        regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0])


def test_parse_gates_accepts_lists_and_commas():
    assert parse_gates(["macro_f1=0.5", " accuracy = 0.9 ,rmse=1,"]) == [
        ("macro_f1", 0.5),
        ("accuracy", 0.9),
        ("rmse", 1.0),
    ]
    assert parse_gates([]) == []


@pytest.mark.parametrize(
    "bad", ["macro_f1", "macro_f1=high", "=3", "macro_f1=", "a=0.5,b", "r2=nan"]
)
def test_parse_gates_rejects_malformed(bad):
    with pytest.raises(UsageError, match="expected METRIC=NUMBER") as err:
        parse_gates([bad])
    assert err.value.exit_code == 2


def test_check_gates_direction():
    metrics = {"macro_f1": 0.412, "accuracy": 0.8, "rmse": 3.1, "mae": 0.5, "log_loss": 0.7, "n": 9}
    gates = [("macro_f1", 0.5), ("accuracy", 0.8), ("rmse", 2.0), ("mae", 1.0), ("log_loss", 0.6)]
    # accuracy == its bound passes; mae under its ceiling passes
    assert check_gates(metrics, gates) == [
        "macro_f1 = 0.412 is below 0.5",
        "rmse = 3.1 is above 2",
        "log_loss = 0.7 is above 0.6",
    ]
    assert check_gates(metrics, [("macro_f1", 0.4), ("rmse", 3.5)]) == []


def test_check_gates_never_prints_a_value_equal_to_its_bound():
    assert check_gates({"accuracy": 0.49996}, [("accuracy", 0.5)]) == [
        "accuracy = 0.49996 is below 0.5"
    ]


def test_check_gates_unknown_or_undefined_metric_lists_the_available_ones():
    metrics = {"task": "classification", "macro_f1": 0.6, "accuracy": 0.8, "roc_auc": None, "n": 3}
    with pytest.raises(UsageError, match="is not a metric") as err:
        check_gates(metrics, [("happiness", 1.0)])
    assert "accuracy, macro_f1" in str(err.value)
    assert "n," not in str(err.value) and "task" not in str(err.value)
    with pytest.raises(UsageError, match="'roc_auc' is undefined"):
        check_gates(metrics, [("roc_auc", 0.5)])


def test_headline_score_is_the_full_metrics_value():
    rng = np.random.default_rng(3)
    for k in (2, 5):
        y = rng.integers(0, k - 1, size=60)  # the last class has no rows
        proba = rng.dirichlet(np.ones(k), size=60)
        full = classification_metrics(y, proba, [f"c{i}" for i in range(k)])
        assert headline_score("classification", y, proba, k) == full["macro_f1"]
    y = rng.normal(size=40)
    pred = y + rng.normal(scale=0.5, size=40)
    assert headline_score("regression", y, pred, 0) == regression_metrics(y, pred)["r2"]
    assert headline_score("regression", np.ones(5), np.arange(5.0), 0) == 0.0
