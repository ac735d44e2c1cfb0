"""Metrics (scikit-learn) and --fail-under quality gates.

Every value returned is a plain Python int, float or None, rounded to 6 decimals,
so a metrics dict goes straight into ``json.dumps`` and compares equal across runs.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from mmcli.errors import DataError, UsageError

#: Error metrics: a --fail-under gate on them means "at most", so it fails when
#: the value is ABOVE its bound. Every other metric is higher-is-better.
LOWER_IS_BETTER = frozenset({"mae", "rmse", "log_loss", "mean_baseline_mae"})

_GATE_SYNTAX = "expected METRIC=NUMBER, e.g. macro_f1=0.8 (several: a=0.5,b=0.7)"

#: The numbers metrics.json holds at its top level, by task: what a gate may name.
GATE_METRICS = {
    "classification": (
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "weighted_f1",
        "log_loss",
        "roc_auc",
        "majority_baseline_accuracy",
    ),
    "regression": ("mae", "rmse", "r2", "mean_baseline_mae"),
}


def _r(x: float) -> float:
    return round(float(x), 6)


#: Up to this many classes metrics.json holds the whole k x k confusion matrix; past it
#: only the cells that hold rows, as [true, predicted, count] (at most one per row).
DENSE_CONFUSION_MAX_CLASSES = 100

#: One-vs-rest ROC AUC and average precision read every row once per class scored: past
#: this many rows x classes, the macro ROC AUC is not computed and the per-class curves
#: cover only the most frequent classes (at 20,000 rows: 500 classes, about 5 s).
CURVE_CELL_BUDGET = 10_000_000

#: The fewest classes per-class curves cover, however many rows there are.
MIN_CURVE_CLASSES = 20


def classification_metrics(y_true: Any, proba: Any, class_names: list[str]) -> dict[str, Any]:
    """Score class probabilities against integer labels.

    ``y_true`` holds class indices in ``range(k)``; ``proba`` is ``(n, k)`` and the
    prediction is its argmax. Returns accuracy, balanced_accuracy, macro_f1,
    weighted_f1, log_loss, roc_auc (macro one-vs-rest; None when undefined, e.g. a
    class has no rows, or over ``CURVE_CELL_BUDGET``, with ``roc_auc_reason`` saying
    why), per_class, the confusion matrix (rows true, columns predicted: k x k up to
    ``DENSE_CONFUSION_MAX_CLASSES``, else None and ``confusion_matrix_cells``),
    majority_baseline_accuracy and n. Memory grows with n + k, beside ``proba`` itself:
    nothing n x k or k x k is made.
    """
    from sklearn import metrics as m

    y_true = np.asarray(y_true).astype(int, copy=False).ravel()
    proba = _float_array(proba)
    k = len(class_names)
    _check_classification_inputs(y_true, proba, k)
    labels = list(range(k))
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, support = m.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    counts = np.bincount(y_true, minlength=k)
    auc, auc_reason = _roc_auc(y_true, proba, k)
    out = {
        "n": int(len(y_true)),
        "accuracy": _r(m.accuracy_score(y_true, y_pred)),
        # Mean recall over the classes that have rows: sklearn's definition, computed
        # from the per-class recall so an absent class does not raise a warning.
        "balanced_accuracy": _r(recall[counts > 0].mean()),
        "macro_f1": _r(m.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": _r(
            m.f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
        ),
        "log_loss": _r(_log_loss(y_true, proba)),
        "roc_auc": auc,
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
    }
    if auc_reason:
        out["roc_auc_reason"] = auc_reason
    out.update(_confusion(y_true, y_pred, class_names))
    return out


def _float_array(proba: Any) -> np.ndarray:
    # float32 stays float32: a float64 copy of 20,000 x 10,000 would be another 1.6 GB.
    proba = np.asarray(proba)
    return proba if proba.dtype in (np.float32, np.float64) else proba.astype(np.float64)


def _row_chunks(n: int, k: int) -> range:
    # Row blocks of about 4M cells: an elementwise check never makes an n x k temporary.
    return range(0, n, max(1, 4_000_000 // max(k, 1)))


def _log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """sklearn's log_loss without its n x k one-hot labels: only the true class's term of
    -sum(onehot * log p) is not zero, so the loss is -mean(log p_true), p clipped to
    [eps, 1 - eps] with float64's eps as sklearn clips the float64 matrix it makes."""
    n = len(y_true)
    sums = np.empty(n)
    step = _row_chunks(n, proba.shape[1]).step
    for start in range(0, n, step):
        sums[start : start + step] = proba[start : start + step].sum(axis=1, dtype=np.float64)
    eps = np.finfo(np.float64).eps
    if not np.allclose(sums, 1.0, rtol=np.sqrt(eps), atol=0.0):
        # sklearn's own warning, so a caller sees the same thing either way.
        warnings.warn(
            "The y_prob values do not sum to one. Make sure to pass probabilities.",
            UserWarning,
            stacklevel=3,
        )
    true = proba[np.arange(n), y_true].astype(np.float64)
    return float(-np.log(np.clip(true, eps, 1 - eps)).mean())


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    k = len(class_names)
    if k <= DENSE_CONFUSION_MAX_CLASSES:
        cells = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
        return {"confusion_matrix": cells.tolist()}
    codes, count = np.unique(y_true.astype(np.int64) * k + y_pred, return_counts=True)
    return {
        "confusion_matrix": None,
        "confusion_matrix_cells": [
            [class_names[c // k], class_names[c % k], int(n)]
            for c, n in zip(codes.tolist(), count.tolist(), strict=True)
        ],
        "confusion_matrix_note": (
            f"{k} classes, over {DENSE_CONFUSION_MAX_CLASSES}: confusion_matrix_cells lists "
            "the cells that hold rows as [true class, predicted class, count]; every other "
            "cell is 0"
        ),
    }


def confusion_counts(y_true: Any, y_pred: Any, shown: list[int]) -> list[list[int]]:
    """The confusion matrix among the classes ``shown`` (indices, in that order): rows
    true, columns predicted; rows whose true or predicted class is not shown are left out."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    s = len(shown)
    where = np.full(max(int(y_true.max(initial=0)), int(y_pred.max(initial=0)), *shown) + 1, -1)
    where[shown] = np.arange(s)
    t, p = where[y_true], where[y_pred]
    keep = (t >= 0) & (p >= 0)
    return np.bincount(t[keep] * s + p[keep], minlength=s * s).reshape(s, s).tolist()


def most_frequent(counts: Any, limit: int) -> list[int]:
    """Indices of the ``limit`` largest ``counts``, largest first, ties by index: the
    classes a figure or a table shows when there are too many to show all."""
    counts = np.asarray(counts)
    return np.argsort(-counts, kind="stable")[:limit].tolist()


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
    chunks = _row_chunks(len(proba), k)
    if not all(np.isfinite(proba[i : i + chunks.step]).all() for i in chunks):
        raise DataError("probabilities contain NaN or infinity")


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, k: int) -> tuple[float | None, str | None]:
    """Macro one-vs-rest ROC AUC, or None and why."""
    from sklearn import metrics as m

    # Undefined (not zero) when a class has no rows: one-vs-rest needs both sides.
    if k < 2:
        return None, "undefined: needs two classes"
    absent = k - len(np.unique(y_true))
    if absent:
        return None, (
            f"undefined: {absent} of {k} classes have no rows here, and one-vs-rest "
            "needs rows of both sides"
        )
    if k > 2 and len(y_true) * k > CURVE_CELL_BUDGET:
        return None, (
            f"not computed: {k} classes x {len(y_true)} rows is over the budget of "
            f"{CURVE_CELL_BUDGET:,} (per_class_curves covers the most frequent classes)"
        )
    try:
        if k == 2:
            auc = m.roc_auc_score(y_true, proba[:, 1])
        else:
            auc = m.roc_auc_score(
                y_true, proba, multi_class="ovr", average="macro", labels=list(range(k))
            )
    except ValueError as err:
        # e.g. rows that do not sum to 1: report "undefined" rather than fail an evaluation.
        return None, f"undefined: {err}"
    return (_r(auc), None) if np.isfinite(auc) else (None, "undefined: not a finite number")


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


def check_gate_names(gates: list[tuple[str, float]], task: str | None = None) -> None:
    """Refuse a gate on a metric ``task`` never has (any task's, when None), before any
    work: a typo found after a long evaluation wastes it. UsageError names the nearest."""
    from mmcli.messages import did_you_mean

    tasks = [task] if task else list(GATE_METRICS)
    known = [name for t in tasks for name in GATE_METRICS[t]]
    for name, _ in gates:
        if name in known:
            continue
        other = next((t for t, names in GATE_METRICS.items() if name in names), None)
        if other:
            raise UsageError(
                f"--fail-under {name}: {name!r} is a {other} metric, and this model's task "
                f"is {task}",
                hint=f"gate on one of: {', '.join(known)}",
            )
        raise UsageError(
            f"--fail-under {name}: no metric {name!r}{did_you_mean(name, known)}",
            hint=f"gate on one of: {', '.join(known)}",
        )


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
            if undefined and metrics.get(f"{name}_reason"):
                why += f" ({metrics[f'{name}_reason']})"
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
    proba = _float_array(proba)
    confidence = proba.max(axis=1).astype(np.float64)
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


def curve_classes(y_true: Any, k: int) -> tuple[list[int], str | None]:
    """The classes one-vs-rest curves are drawn and scored for, and a note when that is
    not all of them: every class within ``CURVE_CELL_BUDGET`` rows x classes, else the
    most frequent that fit (at least ``MIN_CURVE_CLASSES``)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    limit = max(MIN_CURVE_CLASSES, CURVE_CELL_BUDGET // max(len(y_true), 1))
    if k <= limit:
        return list(range(k)), None
    shown = most_frequent(np.bincount(y_true, minlength=k), limit)
    return shown, (
        f"the {limit} most frequent of {k} classes: {k} classes x {len(y_true)} rows is "
        f"over the budget of {CURVE_CELL_BUDGET:,}"
    )


def per_class_curves(y_true: Any, proba: Any, class_names: list[str]) -> dict[str, Any]:
    """One-vs-rest ROC AUC and average precision per class (None where undefined), for
    the classes ``curve_classes`` picks (every class unless there are very many)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = np.asarray(y_true, dtype=np.int64)
    out: dict[str, Any] = {}
    shown, _ = curve_classes(y_true, len(class_names))
    for k in sorted(shown):
        name = class_names[k]
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
