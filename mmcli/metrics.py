"""Metrics (scikit-learn) and --fail-under quality gates.

Every value returned is a plain Python int, float or None, rounded to 6 decimals,
so a metrics dict goes straight into ``json.dumps`` and compares equal across runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmcli.errors import DataError, UsageError

#: Error metrics: a --fail-under gate on them means "at most", so it fails when
#: the value is ABOVE its bound. Every other metric is higher-is-better.
LOWER_IS_BETTER = frozenset({"mae", "rmse", "log_loss", "mean_baseline_mae"})

_GATE_SYNTAX = "expected METRIC=NUMBER, e.g. macro_f1=0.8 (several: a=0.5,b=0.7)"


def _r(x: float) -> float:
    return round(float(x), 6)


def classification_metrics(y_true: Any, proba: Any, class_names: list[str]) -> dict[str, Any]:
    """Score class probabilities against integer labels.

    ``y_true`` holds class indices in ``range(k)``; ``proba`` is ``(n, k)`` and the
    prediction is its argmax. Returns accuracy, balanced_accuracy, macro_f1,
    weighted_f1, log_loss, roc_auc (macro one-vs-rest; None when undefined, e.g. a
    class has no rows), per_class, a k x k confusion_matrix (rows true, columns
    predicted), majority_baseline_accuracy and n.
    """
    from sklearn import metrics as m

    y_true = np.asarray(y_true).astype(int, copy=False).ravel()
    proba = np.asarray(proba, dtype=np.float64)
    k = len(class_names)
    _check_classification_inputs(y_true, proba, k)
    labels = list(range(k))
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, support = m.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    counts = np.bincount(y_true, minlength=k)
    return {
        "n": int(len(y_true)),
        "accuracy": _r(m.accuracy_score(y_true, y_pred)),
        # Mean recall over the classes that have rows: sklearn's definition, computed
        # from the per-class recall so an absent class does not raise a warning.
        "balanced_accuracy": _r(recall[counts > 0].mean()),
        "macro_f1": _r(m.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": _r(
            m.f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
        ),
        # labels= keeps the loss defined when some class has no rows in this split.
        "log_loss": _r(m.log_loss(y_true, proba, labels=labels)),
        "roc_auc": _roc_auc(y_true, proba, k),
        "majority_baseline_accuracy": _r(counts.max() / len(y_true)),
        "per_class": {
            name: {
                "precision": _r(precision[i]),
                "recall": _r(recall[i]),
                "f1": _r(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": m.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def _check_classification_inputs(y_true: np.ndarray, proba: np.ndarray, k: int) -> None:
    if len(y_true) == 0:
        raise DataError("no rows to score")
    if proba.ndim != 2 or proba.shape != (len(y_true), k):
        raise DataError(
            f"probabilities have shape {proba.shape}, expected ({len(y_true)}, {k}): "
            "one row per label, one column per class"
        )
    if y_true.min() < 0 or y_true.max() >= k:
        raise DataError(
            f"labels must be class indices 0..{k - 1}, got {y_true.min()}..{y_true.max()}"
        )
    if not np.isfinite(proba).all():
        raise DataError("probabilities contain NaN or infinity")


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, k: int) -> float | None:
    from sklearn import metrics as m

    # Undefined (not zero) when a class has no rows: one-vs-rest needs both sides.
    if k < 2 or len(np.unique(y_true)) < k:
        return None
    try:
        if k == 2:
            auc = m.roc_auc_score(y_true, proba[:, 1])
        else:
            auc = m.roc_auc_score(
                y_true, proba, multi_class="ovr", average="macro", labels=list(range(k))
            )
    except ValueError:
        # e.g. rows that do not sum to 1: report "undefined" rather than fail an evaluation.
        return None
    return _r(auc) if np.isfinite(auc) else None


def headline_score(task: str, y_true: Any, predictions: Any, k: int) -> float:
    """The one score modality contributions compare, as the full metrics give it: macro-F1
    of the argmax of ``(n, k)`` probabilities, or R² of values (0 where undefined). Only
    that score is computed: leaving out each of thousands of columns must not compute
    every metric thousands of times."""
    from sklearn import metrics as m

    if task == "classification":
        y_true = np.asarray(y_true).astype(int, copy=False).ravel()
        y_pred = np.asarray(predictions).argmax(axis=1)
        return _r(
            m.f1_score(y_true, y_pred, labels=list(range(k)), average="macro", zero_division=0)
        )
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    if len(y_true) < 2 or np.ptp(y_true) == 0:
        return 0.0
    return _r(m.r2_score(y_true, np.asarray(predictions, dtype=np.float64).ravel()))


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """MAE, RMSE, R² (None with under 2 rows or a constant target) and the mean baseline.

    ``mean_baseline_mae`` is the MAE of always predicting the mean of ``y_true``:
    a model worth keeping beats it.
    """
    from sklearn import metrics as m

    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if len(y_true) == 0:
        raise DataError("no rows to score")
    if y_true.shape != y_pred.shape:
        raise DataError(f"{len(y_true)} targets but {len(y_pred)} predictions")
    r2 = None
    if len(y_true) >= 2 and np.ptp(y_true) > 0:
        r2 = _r(m.r2_score(y_true, y_pred))
    return {
        "n": int(len(y_true)),
        "mae": _r(m.mean_absolute_error(y_true, y_pred)),
        # sqrt of MSE rather than root_mean_squared_error, which needs sklearn >= 1.4.
        "rmse": _r(np.sqrt(m.mean_squared_error(y_true, y_pred))),
        "r2": r2,
        "mean_baseline_mae": _r(np.abs(y_true - y_true.mean()).mean()),
    }


def parse_gates(specs: list[str]) -> list[tuple[str, float]]:
    """``["macro_f1=0.5", "accuracy=0.6,roc_auc=0.7"]`` -> ``[(name, bound), ...]`` in order.

    Raises UsageError for an item without ``=``, without a name, or whose bound is
    not a finite number.
    """
    gates = []
    for spec in specs:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue  # tolerate "a=1," and "a=1,,b=2"
            name, sep, value = (s.strip() for s in part.partition("="))
            try:
                bound = float(value)
            except ValueError:
                bound = math.nan
            if not sep or not name or not math.isfinite(bound):
                raise UsageError(f"--fail-under {part!r}: {_GATE_SYNTAX}")
            gates.append((name, bound))
    return gates


def check_gates(metrics: dict[str, Any], gates: list[tuple[str, float]]) -> list[str]:
    """Human-readable failures, e.g. ``"macro_f1 = 0.412 is below 0.5"``; empty when all pass.

    A gate is a lower bound ("fail under") for every metric except the error metrics
    in ``LOWER_IS_BETTER`` (mae, rmse, log_loss, mean_baseline_mae): for those it is an
    upper bound, and the failure says so: ``"rmse = 3.1 is above 2"``.

    Raises UsageError when a gate names a metric that is not a number here (unknown,
    or None because it is undefined for this data); the message lists those that are.
    """
    scalars = sorted(
        name
        for name, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "n"
    )
    failures = []
    for name, bound in gates:
        if name not in scalars:
            undefined = name in metrics and metrics[name] is None
            why = "is undefined for this data" if undefined else "is not a metric"
            raise UsageError(
                f"--fail-under {name}: {name!r} {why}",
                hint=f"gate on one of: {', '.join(scalars)}",
            )
        value = metrics[name]
        shown, limit = _distinct(value, bound)
        if name in LOWER_IS_BETTER and value > bound:
            failures.append(f"{name} = {shown} is above {limit}")
        elif name not in LOWER_IS_BETTER and value < bound:
            failures.append(f"{name} = {shown} is below {limit}")
    return failures


def _distinct(value: float, bound: float) -> tuple[str, str]:
    # Short numbers, but never "0.5 is below 0.5": add digits until the two differ.
    for digits in (4, 6, 8, 12):
        shown, limit = f"{value:.{digits}g}", f"{bound:.{digits}g}"
        if shown != limit:
            return shown, limit
    return repr(float(value)), repr(float(bound))


def calibration(y_true: Any, proba: Any, n_bins: int = 10) -> dict[str, Any]:
    """Expected calibration error of the top-class confidence, and the reliability bins.

    ECE = sum over equal-width confidence bins of (share of rows) x |accuracy - confidence|.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        rows = which == b
        if not rows.any():
            continue
        acc, conf = float(correct[rows].mean()), float(confidence[rows].mean())
        ece += rows.mean() * abs(acc - conf)
        bins.append(
            {
                "low": _r(edges[b]),
                "high": _r(edges[b + 1]),
                "count": int(rows.sum()),
                "accuracy": _r(acc),
                "confidence": _r(conf),
            }
        )
    return {"ece": _r(ece), "bins": bins}


def per_class_curves(y_true: Any, proba: Any, class_names: list[str]) -> dict[str, Any]:
    """One-vs-rest ROC AUC and average precision per class (None where undefined)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = np.asarray(y_true, dtype=np.int64)
    out: dict[str, Any] = {}
    for k, name in enumerate(class_names):
        positive = y_true == k
        if positive.all() or not positive.any():
            out[name] = {"roc_auc": None, "average_precision": None}
            continue
        out[name] = {
            "roc_auc": _r(roc_auc_score(positive, proba[:, k])),
            "average_precision": _r(average_precision_score(positive, proba[:, k])),
        }
    return out


def residual_summary(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """Residuals (prediction - target): mean, std and quantiles."""
    residual = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    q = np.quantile(residual, [0.05, 0.25, 0.5, 0.75, 0.95]) if len(residual) else [0.0] * 5
    return {
        "mean": _r(residual.mean()) if len(residual) else 0.0,
        "std": _r(residual.std()) if len(residual) else 0.0,
        "quantiles": dict(zip(["p05", "p25", "p50", "p75", "p95"], map(_r, q), strict=True)),
    }
