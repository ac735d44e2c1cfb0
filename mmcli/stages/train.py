"""train: a model on a fused feature matrix (logistic regression or MLP head).

Output artifact::

    model.safetensors  the weights of the best val epoch (never a pickle)
    history.json       per-epoch train/val loss and val score
    curve.png          the same as a plot
    mmcli.json         architecture, classes, target scaling: all evaluate/predict need
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts.record import Artifact, relative_to
from mmcli.config import TrainConfig
from mmcli.errors import DataError, MissingInputError
from mmcli.stages import Progress, no_progress


def run(cfg: TrainConfig, progress: Progress = no_progress, force: bool = False) -> dict[str, Any]:
    """Train a head on a fuse artifact; early stopping on its val split."""
    data = artifacts.load(cfg.data, stages=("fuse",))
    key = artifacts.cache_key("train", cfg.identity(), {"upstream": data.fingerprint})
    summary: dict[str, Any] = {"stage": "train", "out": str(cfg.out)}
    if not force and (record := artifacts.up_to_date(cfg.out, key)) is not None:
        return {**summary, "status": "up-to-date", **record["summary"]}

    import torch

    from mmcli.models import heads, training

    target = data.record["schema"]["target"]
    task = target["task"]
    table = pd.read_parquet(data.file("rows.parquet"))
    x = torch.from_numpy(np.load(data.file("X.npy"), allow_pickle=False))
    split = table["_split"].to_numpy()
    train_idx, val_idx = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    y_np = table["_target"].to_numpy().copy()
    scale = {"mean": 0.0, "std": 1.0}
    if task == "classification":
        n_classes = len(target["classes"])
        y = torch.as_tensor(y_np, dtype=torch.long)
        counts = np.bincount(y_np[train_idx], minlength=n_classes)
        if (counts == 0).any():
            missing = [c for c, k in zip(target["classes"], counts, strict=True) if k == 0]
            raise DataError(f"{cfg.data}: classes {missing} have no train rows")
        class_weights = (
            torch.as_tensor(len(train_idx) / (n_classes * counts), dtype=torch.float32)
            if cfg.class_weight == "balanced"
            else None
        )
    else:
        n_classes = 1
        # Standardise the target so the same learning rate suits any unit.
        scale = {"mean": float(y_np[train_idx].mean()), "std": float(y_np[train_idx].std() or 1.0)}
        y = torch.as_tensor((y_np - scale["mean"]) / scale["std"], dtype=torch.float32)[:, None]
        class_weights = None

    generator = training.seed_everything(cfg.seed)
    architecture = {
        "family": "head",
        "model": cfg.model,
        "in_dim": int(x.shape[1]),
        "out_dim": n_classes,
        "hidden": cfg.hidden,
        "dropout": cfg.dropout,
    }
    model = heads.build(architecture)
    with _deterministic(torch):
        result = training.fit(
            model,
            (x,),
            y,
            train_idx,
            val_idx,
            loss_fn=training.loss_function(task, cfg.loss, class_weights),
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            patience=cfg.patience,
            generator=generator,
            score=_scorer(task),
            progress=progress,
        )
    best = result.history[result.best_epoch - 1]
    summary.update(
        {
            "status": "built",
            "model": cfg.model,
            "task": task,
            "epochs": len(result.history),
            "best_epoch": result.best_epoch,
            "val_score": best.get("val_score"),
            "val_metric": "macro_f1" if task == "classification" else "r2",
        }
    )
    inputs = {
        "upstream": {
            "stage": "fuse",
            "path": relative_to(data.path, cfg.out),
            "fingerprint": data.fingerprint,
        }
    }
    with artifacts.Builder(
        cfg.out, stage="train", params=cfg.identity(), inputs=inputs, key=key, seed=cfg.seed
    ) as build:
        from safetensors.torch import save_file

        from mmcli import plots

        save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()},
            str(build.dir / "model.safetensors"),
        )
        (build.dir / "history.json").write_text(json.dumps(result.history, indent=1) + "\n")
        plots.training_curve_png(
            result.history, build.dir / "curve.png", best_epoch=result.best_epoch
        )
        build.info.update(
            {
                "architecture": architecture,
                "task": task,
                "classes": target.get("classes"),
                "target_scale": scale,
                "best_epoch": result.best_epoch,
                "summary": {
                    k: v for k, v in summary.items() if k not in ("stage", "out", "status")
                },
            }
        )
    return summary


def load_model(model_art: Artifact) -> Any:
    """Rebuild the trained torch module from its artifact; refuses mismatched weights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from mmcli.models import heads

    record = model_art.record
    module = heads.build(record["architecture"])
    try:
        state = load_file(str(model_art.file("model.safetensors")))
        module.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise MissingInputError(
            f"{model_art.path}: model weights unreadable or not matching "
            f"the recorded architecture ({str(exc).splitlines()[0]})"
        ) from None
    module.eval()
    return module


def to_predictions(model_art: Artifact, outputs: Any) -> np.ndarray:
    """Raw model outputs -> class probabilities (n, k) or values in target units (n,)."""
    import torch

    record = model_art.record
    if record["task"] == "classification":
        proba = torch.softmax(outputs.double(), dim=1).numpy()
        return proba / proba.sum(axis=1, keepdims=True)
    scale = record["target_scale"]
    return outputs[:, 0].numpy().astype(np.float64) * scale["std"] + scale["mean"]


def _scorer(task: str) -> Any:
    from sklearn.metrics import f1_score, r2_score

    def score(out: Any, y: Any) -> float:
        if task == "classification":
            return float(
                f1_score(y.numpy(), out.argmax(1).numpy(), average="macro", zero_division=0)
            )
        return float(r2_score(y.numpy(), out.numpy())) if len(y) > 1 else 0.0

    return score


class _deterministic:
    """Deterministic torch kernels for the duration of training, restored afterwards."""

    def __init__(self, torch: Any):
        self.torch = torch

    def __enter__(self) -> None:
        self.previous = self.torch.are_deterministic_algorithms_enabled()
        self.torch.use_deterministic_algorithms(True)

    def __exit__(self, *exc: Any) -> None:
        self.torch.use_deterministic_algorithms(self.previous)
