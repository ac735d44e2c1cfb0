"""PNG plots (matplotlib, Agg backend), written byte-for-byte reproducibly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# No software/date stamp in the file, so the same numbers give the same bytes.
_SAVE = {"dpi": 100, "metadata": {"Software": None}}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix_png(
    cm: list[list[int]], class_names: list[str], path: Path, title: str = "Confusion matrix"
) -> None:
    """Annotated heatmap: rows are true classes, columns predicted."""
    plt = _pyplot()
    k = len(class_names)
    side = max(4.0, 0.6 * k + 2.5)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(cm, cmap="Blues")
    top = max((max(row) for row in cm), default=0)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(cm[i][j]),
                ha="center",
                va="center",
                color="white" if cm[i][j] > top / 2 else "black",
            )
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, **_SAVE)
    plt.close(fig)


def training_curve_png(
    history: list[dict[str, Any]], path: Path, best_epoch: int | None = None
) -> None:
    """Train/val loss per epoch, the val score on a second axis, the best epoch marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    if any("val_loss" in h for h in history):
        ax.plot(epochs, [h.get("val_loss") for h in history], label="val loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if any("val_score" in h for h in history):
        twin = ax.twinx()
        twin.plot(
            epochs, [h.get("val_score") for h in history], color="tab:green", label="val score"
        )
        twin.set_ylabel("val score")
        twin.legend(loc="upper right")
    if best_epoch:
        ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best epoch ({best_epoch})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, **_SAVE)
    plt.close(fig)


def predicted_vs_actual_png(y_true: Any, y_pred: Any, path: Path) -> None:
    """Scatter of predictions against targets with the identity line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y_true, y_pred, s=12, alpha=0.7)
    lo = float(min(min(y_true), min(y_pred)))
    hi = float(max(max(y_true), max(y_pred)))
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    fig.tight_layout()
    fig.savefig(path, **_SAVE)
    plt.close(fig)
