"""PNG plots (matplotlib, Agg backend), written byte-for-byte reproducibly.

Same inputs and the same matplotlib give the same bytes: fixed size and dpi, the
default style whatever the user's matplotlibrc says, and no software/date stamp.
matplotlib is imported inside the functions so importing this module stays cheap.

Class and column names are user text: every text is drawn literally (no mathtext, no
TeX, so ``$\\foo$`` is those six characters, not a crash), one line, and shortened.
"""

from __future__ import annotations

import math
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Every plot is FIGSIZE inches at DPI: 600 x 500 pixels.
FIGSIZE = (6.0, 5.0)
DPI = 100

#: A figure shows at most this many classes (confusion matrix, curves) or columns
#: (contributions), the most frequent (or largest) ones; its title says so.
MAX_SHOWN = 20

#: Longer labels are shortened in figures, with an ellipsis in the middle.
LABEL_CHARS = 24

# Literal text: a "$" or "\\" in a label is drawn as itself, whatever matplotlibrc says.
_LITERAL_TEXT = {"text.parse_math": False, "text.usetex": False}


def label(text: Any, chars: int = LABEL_CHARS) -> str:
    """``text`` as one short line for a figure: control characters and line breaks as
    spaces, and past ``chars`` characters its start and end around an ellipsis."""
    text = str(text)
    if len(text) > chars:
        head = (chars - 1) * 2 // 3
        text = text[:head] + "\u2026" + text[len(text) - (chars - 1 - head) :]
    return "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in text)


@contextmanager
def _figure() -> Iterator[tuple[Any, Any]]:
    """A new figure and axes in the default style, every text in it drawn literally.

    Made with matplotlib's object API, never pyplot: a notebook that plots with mmcli
    keeps its own backend and figures, and nothing needs a display."""
    import matplotlib
    import matplotlib.style
    from matplotlib.figure import Figure

    with (
        matplotlib.style.context("default"),
        matplotlib.rc_context(_LITERAL_TEXT),
        warnings.catch_warnings(),
    ):
        # An emoji or a script the font lacks is drawn as a box, not a warning per glyph.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=FIGSIZE)
        yield fig, fig.add_subplot()


def _save(fig: Any, path: str | Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


def confusion_matrix_png(
    cm: list[list[int]],
    class_names: list[str],
    path: str | Path,
    title: str = "Confusion matrix",
    of: int | None = None,
) -> None:
    """Annotated heatmap of counts: rows are true classes, columns predicted.

    Past ``MAX_SHOWN`` classes only the most frequent true classes are drawn. ``of``
    says ``cm`` already is such a part, of a matrix of that many classes; the title
    says how many are shown.
    """
    from mmcli.metrics import most_frequent

    if len(class_names) > MAX_SHOWN:
        shown = most_frequent([sum(row) for row in cm], MAX_SHOWN)
        cm = [[cm[i][j] for j in shown] for i in shown]
        class_names, of = [class_names[i] for i in shown], len(class_names)
    k = len(class_names)
    if of is not None and of > k:
        title = f"{title}: the {k} most frequent of {of:,} classes"
    top = max((max(row) for row in cm if row), default=0)
    # Smaller digits as classes grow, so counts stay inside their cells.
    fontsize = 10 if k <= 8 else max(5, 80 // k)
    with _figure() as (fig, ax):
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(top, 1))
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    str(cm[i][j]),
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if cm[i][j] > top / 2 else "black",
                )
        names = [label(c) for c in class_names]
        ax.set_xticks(range(k), names, rotation=45, ha="right")
        ax.set_yticks(range(k), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        _save(fig, path)


def training_curve_png(
    history: list[dict[str, Any]],
    path: str | Path,
    best_epoch: int | None = None,
    metric: str = "score",
) -> None:
    """Train/val loss per epoch on the left axis, the val ``metric`` on the right, best
    epoch dashed; the legend below the plot, where it covers no line.

    ``history`` items look like ``{"epoch": 1, "train_loss": .., "val_loss": ..,
    "val_score": ..}``; any of the three values may be missing or None. The best
    epoch is ``best_epoch`` if given, else the first item marked ``"best": True``.
    """
    if best_epoch is None:
        best_epoch = next((h["epoch"] for h in history if h.get("best")), None)
    epochs = [h["epoch"] for h in history]
    with _figure() as (fig, ax):
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        for key, label in (("train_loss", "train loss"), ("val_loss", "val loss")):
            if any(h.get(key) is not None for h in history):
                ax.plot(epochs, _series(history, key), marker=".", label=label)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best epoch ({best_epoch})")
        if any(h.get("val_score") is not None for h in history):
            twin = ax.twinx()
            twin.plot(
                epochs,
                _series(history, "val_score"),
                color="tab:green",
                marker=".",
                label=f"val {metric}",
            )
            twin.set_ylabel(f"val {metric}")
        # One legend for both axes, under the plot: inside it would cover the lines.
        handles = [h for a in fig.axes for h in a.get_legend_handles_labels()[0]]
        if handles:
            ax.legend(
                handles=handles,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.13),
                ncol=min(len(handles), 4),
                frameon=False,
            )
        ax.set_title("Training curve")
        _save(fig, path)


def _series(history: list[dict[str, Any]], key: str) -> list[float]:
    # None -> NaN: matplotlib leaves a gap instead of failing on None.
    return [math.nan if h.get(key) is None else float(h[key]) for h in history]


def predicted_vs_actual_png(y_true: Any, y_pred: Any, path: str | Path) -> None:
    """Regression scatter of predictions against targets, with the y = x line."""
    import numpy as np

    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    with _figure() as (fig, ax):
        ax.scatter(y_true, y_pred, s=12, alpha=0.7)
        both = np.concatenate([y_true, y_pred])
        both = both[np.isfinite(both)]
        if len(both):
            lo, hi = float(both.min()), float(both.max())
            ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", label="predicted = actual")
            ax.legend(loc="upper left")
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
        ax.set_title("Predicted vs actual")
        _save(fig, path)


def reliability_diagram_png(bins: list[dict[str, Any]], path: str | Path) -> None:
    """Accuracy against confidence per bin; a calibrated model follows the diagonal."""
    with _figure() as (fig, ax):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
        centres = [(b["low"] + b["high"]) / 2 for b in bins]
        ax.bar(
            centres, [b["accuracy"] for b in bins], width=0.09, alpha=0.7, label="accuracy per bin"
        )
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            "o-",
            color="tab:red",
            label="accuracy at the bin's mean confidence",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top-class probability)")
        ax.set_ylabel("accuracy")
        ax.set_title("Reliability diagram")
        ax.legend(loc="upper left")
        _save(fig, path)


def class_curves_png(
    y_true: Any, proba: Any, class_names: list[str], path: str | Path, kind: str
) -> None:
    """One-vs-rest ROC (``kind="roc"``) or precision-recall (``"pr"``) curve per class;
    past ``MAX_SHOWN`` classes, for the most frequent ones, as the title says."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve, roc_curve

    from mmcli.metrics import most_frequent

    y_true = np.asarray(y_true)
    shown = range(len(class_names))
    title = "ROC curves (one vs rest)" if kind == "roc" else "Precision-recall curves"
    if len(class_names) > MAX_SHOWN:
        shown = most_frequent(np.bincount(y_true, minlength=len(class_names)), MAX_SHOWN)
        title += f": the {MAX_SHOWN} most frequent of {len(class_names):,} classes"
    with _figure() as (fig, ax):
        lines, names = [], []
        for k in shown:
            positive = y_true == k
            if positive.all() or not positive.any():
                continue
            if kind == "roc":
                x, y, _ = roc_curve(positive, proba[:, k])
            else:
                y, x, _ = precision_recall_curve(positive, proba[:, k])
            lines += ax.plot(x, y, linewidth=1.2)
            names.append(label(class_names[k], 30))
        if kind == "roc":
            ax.plot([0, 1], [0, 1], color="grey", linestyle="--")
        ax.set_xlabel("false positive rate" if kind == "roc" else "recall")
        ax.set_ylabel("true positive rate" if kind == "roc" else "precision")
        ax.set_title(title)
        if len(class_names) <= 12:
            # Handles and labels given: a class named "_x" is not hidden as private.
            loc = "lower right" if kind == "roc" else "lower left"
            ax.legend(lines, names, loc=loc, fontsize="small")
        _save(fig, path)


def contributions_png(drops: dict[str, float], metric: str, path: str | Path) -> None:
    """Horizontal bars: how much the score falls when each input column is masked;
    past ``MAX_SHOWN`` columns, the largest drops, as the title says."""
    names = list(drops)
    title = "Modality contributions (leave one out)"
    if len(names) > MAX_SHOWN:
        names = sorted(names, key=lambda n: -drops[n])[:MAX_SHOWN]
        title = f"Contributions: the {MAX_SHOWN} largest of {len(drops):,} columns"
    with _figure() as (fig, ax):
        ax.barh(range(len(names)), [drops[n] for n in names], color="tab:blue")
        ax.set_yticks(range(len(names)), [label(n) for n in names])
        ax.invert_yaxis()
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_xlabel(f"drop in {metric} when the column is masked")
        ax.set_title(title)
        _save(fig, path)


def residuals_png(y_true: Any, y_pred: Any, path: str | Path) -> None:
    """Histogram of residuals (prediction - target)."""
    import numpy as np

    residual = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    with _figure() as (fig, ax):
        ax.hist(residual, bins=30, color="tab:blue", alpha=0.8)
        ax.axvline(0, color="grey", linestyle="--")
        ax.set_xlabel("residual (predicted - actual)")
        ax.set_ylabel("rows")
        ax.set_title("Residuals")
        _save(fig, path)
