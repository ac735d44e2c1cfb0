"""Metrics (scikit-learn) and --fail-under quality gates."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmcli.errors import UsageError

#: Metrics where lower is better: a gate on them fails when the value is above its bound.
LOWER_IS_BETTER = {"mae", "rmse", "log_loss"}


def _r(x: float) -> float:
    return round(float(x), 6)


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro/weighted F1, log loss, ROC-AUC, per class, confusion."""
    from sklearn import metrics as m

    k = len(class_names)
    labels = list(range(k))
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, support = m.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    roc_auc: float | None = None
    # Undefined (not zero) when a class has no rows here: one-vs-rest needs both sides.
    if len(np.unique(y_true)) == k:
        if k == 2:
            auc = m.roc_auc_score(y_true, proba[:, 1])
        else:
            auc = m.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
        roc_auc = _r(auc) if np.isfinite(auc) else None
    counts = np.bincount(y_true, minlength=k)
    return {
        "n": int(len(y_true)),
        "accuracy": _r(m.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _r(m.balanced_accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": _r(m.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": _r(
            m.f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
        ),
        "log_loss": _r(m.log_loss(y_true, np.clip(proba, 1e-15, 1), labels=labels)),
        "roc_auc": roc_auc,
        "majority_baseline_accuracy": _r(counts.max() / max(len(y_true), 1)),
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


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MAE, RMSE, R² and the MAE of always predicting the mean."""
    from sklearn import metrics as m

    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    r2 = None
    if len(y_true) >= 2 and np.ptp(y_true) > 0:
        r2 = _r(m.r2_score(y_true, y_pred))
    return {
        "n": int(len(y_true)),
        "mae": _r(m.mean_absolute_error(y_true, y_pred)),
        "rmse": _r(np.sqrt(m.mean_squared_error(y_true, y_pred))),
        "r2": r2,
        "mean_baseline_mae": _r(np.abs(y_true - y_true.mean()).mean()),
    }


def parse_gates(specs: list[str]) -> list[tuple[str, float]]:
    """``["macro_f1=0.5", "accuracy=0.6,roc_auc=0.7"]`` -> [(name, value), ...]."""
    gates = []
    for spec in specs:
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = part.partition("=")
            try:
                if not sep or not name.strip():
                    raise ValueError
                gates.append((name.strip(), float(value)))
            except ValueError:
                raise UsageError(
                    f"--fail-under {part!r}: expected METRIC=NUMBER, e.g. macro_f1=0.8"
                ) from None
    return gates


def check_gates(metrics: dict[str, Any], gates: list[tuple[str, float]]) -> list[str]:
    """Human-readable failures, empty when every gate passes."""
    scalars = sorted(
        k
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n"
    )
    failures = []
    for name, bound in gates:
        value = metrics.get(name)
        if name not in scalars:
            raise UsageError(
                f"--fail-under: no metric {name!r} here", hint=f"metrics: {', '.join(scalars)}"
            )
        if name in LOWER_IS_BETTER and value > bound:
            failures.append(f"{name} = {value:.4g} is above {bound:g}")
        elif name not in LOWER_IS_BETTER and value < bound:
            failures.append(f"{name} = {value:.4g} is below {bound:g}")
    return failures
