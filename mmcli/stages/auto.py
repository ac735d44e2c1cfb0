"""``train --model auto`` on a fuse artifact: a few heads, chosen on the val split.

Candidates, in this order (a later one must score strictly higher to win, so a tie
keeps the simpler model):

- ``logistic``: one linear model on the whole fused matrix (logistic regression, or ridge
  for a regression target), its regularisation picked from a path by val log-loss
  (squared error); fitted in closed form by scikit-learn's L-BFGS, stored as a linear
  head;
- ``late``: late fusion (``mmcli.models.late``), one calibrated linear model per column
  combined by weights fitted out of fold on the train rows; needs a concat fuse artifact;
- ``mlp``: the MLP head trained by epochs with early stopping, as ``--model mlp``.

Each is scored on the val split with the task's headline metric (macro-F1, R²); every
candidate's score lands in the model's record, its summary and the evaluation report.
Nothing here reads the test split. Without val rows there is nothing to choose on: late
fusion is kept (logistic where late cannot run), and the record says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mmcli.artifacts.record import Artifact
from mmcli.config import TrainConfig
from mmcli.errors import UsageError
from mmcli.stages import Progress

#: What ``--model auto`` tries, simplest first (a tie keeps the earlier).
CANDIDATES = ("logistic", "late", "mlp")


@dataclass
class Searched:
    """The chosen candidate's fit, as ``training.FitResult`` (with ``val_score``)."""

    chosen: str
    candidates: list[dict[str, Any]]
    val_score: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def candidate_scores(candidates: list[dict[str, Any]]) -> dict[str, float | None]:
    """name -> val score, for a summary."""
    return {c["name"]: c["val_score"] for c in candidates}


def search(
    cfg: TrainConfig,
    data: Artifact,
    table: pd.DataFrame,
    y: Any,
    y_np: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    class_weights: Any,
    sample_weights: Any,
    progress: Progress,
    device: Any,
) -> tuple[Searched, Any, dict[str, Any]]:
    """Fit every candidate, score it on val, keep the best: (result, model, architecture)."""
    from mmcli.stages import model_inputs
    from mmcli.stages.train import fit_torch

    task = data.record.table.target.task
    classification = task == "classification"
    n_out = len(data.record.table.target.classes or []) or 1
    x = np.ascontiguousarray(model_inputs.fused_matrix(data))
    labels = y_np.astype(np.int64) if classification else y.numpy()[:, 0].astype(np.float64)
    weights = _row_weights(cfg, labels, train_idx) if classification else None
    fitted: list[tuple[dict[str, Any], Any, dict[str, Any], Any]] = []

    kinds = ("late",) if cfg.model == "late" else CANDIDATES
    if data.record.method != "concat":
        if cfg.model == "late":
            raise UsageError(
                "--model late needs per-column blocks: fuse with --method concat (the default)"
            )
        kinds = tuple(k for k in kinds if k != "late")
    for kind in kinds:
        progress(f"fitting candidate {kind}", len(fitted), len(kinds))
        if kind == "logistic":
            fitted.append(_logistic(cfg, x, labels, train_idx, val_idx, task, n_out, weights))
        elif kind == "late":
            fitted.append(
                _late(cfg, data, x, table, labels, train_idx, val_idx, task, n_out, weights)
            )
        else:
            mlp_cfg = cfg.model_copy(update={"model": "mlp"})
            result, model, architecture = fit_torch(
                mlp_cfg, data, table, "mlp", "none", y, y_np, train_idx, val_idx,
                class_weights, sample_weights, progress, device,
            )  # fmt: skip
            fitted.append(({"name": "mlp", "params": {}}, model, architecture, result))

    inputs_for = {"head": [_tensor(x)]}
    if data.record.method == "concat":
        specs = model_inputs.block_specs(data.record)
        inputs_for["late"] = model_inputs.block_inputs(x, table, specs)
    score = _score_function(task)
    best = 0
    for i, (info, model, architecture, _) in enumerate(fitted):
        if len(val_idx):
            info["val_score"] = round(
                score(model, inputs_for[architecture["family"]], val_idx, y), 6
            )
            if info["val_score"] > fitted[best][0]["val_score"]:
                best = i
        else:
            info["val_score"] = None
    if not len(val_idx):
        best = next((i for i, f in enumerate(fitted) if f[0]["name"] == "late"), 0)
    info, model, architecture, result = fitted[best]
    candidates = [{**f[0], "chosen": i == best} for i, f in enumerate(fitted)]
    searched = Searched(info["name"], candidates, info["val_score"])
    if result is not None:
        searched.history, searched.best_epoch = result.history, result.best_epoch
        searched.stopped_early = result.stopped_early
    return searched, model, architecture


def _row_weights(cfg: TrainConfig, labels: np.ndarray, train_idx: np.ndarray) -> np.ndarray | None:
    """Balanced row weights (sklearn's rule) when --class-weight or --sampler asks for them."""
    if cfg.class_weight != "balanced" and cfg.sampler != "weighted":
        return None
    counts = np.bincount(labels[train_idx])
    per_class = len(train_idx) / (len(counts) * np.maximum(counts, 1))
    return per_class[labels]


def _tensor(x: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(x)


def _score_function(task: str) -> Any:
    from mmcli.models import training
    from mmcli.stages.train import scorer

    metric = scorer(task)

    def score(model: Any, inputs: list[Any], rows: np.ndarray, y: Any) -> float:
        return metric(training.predict(model, inputs, rows), y[rows])

    return score


def _logistic(
    cfg: TrainConfig,
    x: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    task: str,
    n_out: int,
    weights: np.ndarray | None,
) -> tuple[dict[str, Any], Any, dict[str, Any], None]:
    import torch

    from mmcli.models import heads, late

    classification = task == "classification"
    strength = late.pick_strength(x, labels, train_idx, val_idx, classification, n_out, weights)
    coef, intercept = late.linear(
        x[train_idx], labels[train_idx], strength, classification, n_out, weights
    )
    architecture = {
        "family": "head",
        "model": "logistic",
        "in_dim": int(x.shape[1]),
        "out_dim": n_out,
        "hidden": cfg.hidden,
        "dropout": cfg.dropout,
    }
    model = heads.build(architecture)
    model.load_state_dict(
        {
            "net.weight": torch.tensor(coef, dtype=torch.float32),
            "net.bias": torch.tensor(intercept, dtype=torch.float32),
        }
    )
    param = "C" if classification else "alpha"
    return {"name": "logistic", "params": {param: strength}}, model.eval(), architecture, None


def _late(
    cfg: TrainConfig,
    data: Artifact,
    x: np.ndarray,
    table: pd.DataFrame,
    labels: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    task: str,
    n_out: int,
    weights: np.ndarray | None,
) -> tuple[dict[str, Any], Any, dict[str, Any], None]:
    from mmcli.models import late
    from mmcli.stages import model_inputs

    specs = model_inputs.block_specs(data.record)
    names = [s["name"] for s in specs]
    blocks = [x[:, s["start"] : s["stop"]] for s in specs]
    mask = model_inputs.mask_tensor(table, names).numpy()
    fit = late.fit(blocks, mask, labels, train_idx, val_idx, names, task, n_out, cfg.seed, weights)
    architecture = {"family": "late", "columns": specs, "out_dim": n_out, "task": task}
    model = late.LateFusionNet(architecture)
    model.load_state_dict(fit.state)
    param = "C" if task == "classification" else "alpha"
    params = {f"{name}.{param}": value for name, value in fit.chosen.items()}
    params.update({f"{n}.weight": w for n, w in zip(names, model.fusion_weights(), strict=True)})
    return {"name": "late", "params": params}, model.eval(), architecture, None
