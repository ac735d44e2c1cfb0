"""``train --model auto`` on a fuse artifact: a few heads, chosen on evidence.

Candidates, in this order (a later one must score strictly higher to win, so a tie
keeps the simpler model):

- ``logistic``: one linear model on the whole fused matrix (logistic regression, or ridge
  for a regression target), its regularisation picked from a path by val log-loss
  (squared error); fitted in closed form by scikit-learn's L-BFGS, stored as a linear
  head;
- ``late``: late fusion (``mmcli.models.late``), one calibrated linear model per column
  combined by weights fitted out of fold on the train rows; needs a concat fuse artifact;
- ``mlp``: the MLP head trained by epochs with early stopping, as ``--model mlp``;
- ``ensemble``: the mean of the three above's class probabilities (predictions, for
  regression), ``mmcli.models.ensemble``; it has nothing of its own to fit.

Each is scored with the task's headline metric (macro-F1, R²) on the val split, or, when
the val split is small (under ``FOLDS_BELOW`` rows, none included), by stratified K-fold
cross-validation on the train+val rows: every candidate is refitted on each fold's other
rows and scored on the fold. The chosen candidate is then fitted on the split as usual.
Every candidate's scores land in the model's record, its summary and the evaluation
report. Nothing here reads the test split.
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
CANDIDATES = ("logistic", "late", "mlp", "ensemble")
#: Below this many val rows the choice is made by K-fold cross-validation: at 500 rows
#: the standard error of a macro-F1 near 0.8 is about 0.02, more than candidates differ by.
FOLDS_BELOW = 500
FOLDS = 5


@dataclass
class Searched:
    """The chosen candidate's fit, as ``training.FitResult`` (with ``val_score``)."""

    chosen: str
    candidates: list[dict[str, Any]]
    val_score: float | None
    scored_on: str
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def candidate_scores(candidates: list[dict[str, Any]]) -> dict[str, float | None]:
    """name -> the score the choice was made on, for a summary."""
    return {c["name"]: c.get("cv_score", c["val_score"]) for c in candidates}


@dataclass
class _Split:
    """The rows and targets one round of fitting uses (the split's own, or one fold's)."""

    table: pd.DataFrame
    y: Any
    y_np: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    class_weights: Any
    sample_weights: Any


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
    """Fit every candidate, score it, keep the best: (result, model, architecture)."""
    kinds = ("late",) if cfg.model == "late" else CANDIDATES
    if data.record.method != "concat":
        if cfg.model == "late":
            raise UsageError(
                "--model late needs per-column blocks: fuse with --method concat (the default)"
            )
        kinds = tuple(k for k in kinds if k != "late")
    x = np.ascontiguousarray(_fused_matrix(data))
    own = _Split(table, y, y_np, train_idx, val_idx, class_weights, sample_weights)
    folds = _folds(cfg, data, table) if len(kinds) > 1 and len(val_idx) < FOLDS_BELOW else []
    cv: dict[str, list[float]] = {k: [] for k in kinds}
    for k, fold in enumerate(folds):
        in_fold = _prefixed(progress, f"fold {k + 1} of {len(folds)}: ")
        for info, *_ in _fit_all(cfg, data, x, fold, kinds, in_fold, device):
            cv[info["name"]].append(info["val_score"])
    fitted = _fit_all(cfg, data, x, own, kinds, progress, device)
    if folds:
        for info, *_ in fitted:
            info["cv_score"] = round(float(np.mean(cv[info["name"]])), 6)
        key, scored_on = "cv_score", f"{len(folds)}-fold cross-validation on train+val"
    elif len(val_idx):
        key, scored_on = "val_score", "val split"
    else:
        key, scored_on = "", "nothing (no val rows): late fusion kept"
    best = 0
    for i, (info, *_) in enumerate(fitted):
        if key and info[key] > fitted[best][0][key]:
            best = i
    if not key:
        best = next((i for i, f in enumerate(fitted) if f[0]["name"] == "late"), 0)
    info, model, architecture, result = fitted[best]
    candidates = [{**f[0], "chosen": i == best} for i, f in enumerate(fitted)]
    searched = Searched(info["name"], candidates, info["val_score"], scored_on)
    if result is not None:
        searched.history, searched.best_epoch = result.history, result.best_epoch
        searched.stopped_early = result.stopped_early
    return searched, model, architecture


def _fused_matrix(data: Artifact) -> np.ndarray:
    from mmcli.stages import model_inputs

    return model_inputs.fused_matrix(data)


def _prefixed(progress: Progress, prefix: str) -> Progress:
    def say(task: str, done: int, total: int | None) -> None:
        progress(prefix + task, done, total)

    return say


def _folds(cfg: TrainConfig, data: Artifact, table: pd.DataFrame) -> list[_Split]:
    """K stratified folds of the train+val rows, seeded; none when a class (or the set)
    is too small to be in every fold's training rows."""
    from sklearn.model_selection import KFold, StratifiedKFold

    from mmcli.stages.train import targets

    target = data.record.table.target
    split = table["_split"].to_numpy()
    rows = np.flatnonzero(split != "test")
    labels = table["_target"].to_numpy()[rows]
    if target.task == "classification":
        counts = np.bincount(labels.astype(np.int64))
        k = min(FOLDS, int(counts[counts > 0].min()) if len(rows) else 0)
        splitter: Any = StratifiedKFold(k, shuffle=True, random_state=cfg.seed) if k >= 2 else None
    else:
        k = min(FOLDS, len(rows))
        splitter = KFold(k, shuffle=True, random_state=cfg.seed) if k >= 2 else None
    if splitter is None:
        return []
    folds = []
    for fit, held in splitter.split(rows, labels):
        fold_split = split.copy()
        fold_split[rows[fit]], fold_split[rows[held]] = "train", "val"
        fold_table = table.assign(_split=fold_split)
        train_idx, val_idx = np.sort(rows[fit]), np.sort(rows[held])
        y, y_np, _, class_weights, sample_weights = targets(cfg, target, fold_table, train_idx)
        folds.append(_Split(fold_table, y, y_np, train_idx, val_idx, class_weights, sample_weights))
    return folds


def _fit_all(
    cfg: TrainConfig,
    data: Artifact,
    x: np.ndarray,
    split: _Split,
    kinds: tuple[str, ...],
    progress: Progress,
    device: Any,
) -> list[tuple[dict[str, Any], Any, dict[str, Any], Any]]:
    """Every candidate fitted on ``split``'s train rows and scored on its val rows:
    (info with ``val_score``, model, architecture, epoch-fit result or None)."""
    from mmcli.stages import model_inputs
    from mmcli.stages.train import fit_torch

    task = data.record.table.target.task
    classification = task == "classification"
    n_out = len(data.record.table.target.classes or []) or 1
    train_idx, val_idx = split.train_idx, split.val_idx
    labels = (
        split.y_np.astype(np.int64) if classification else split.y.numpy()[:, 0].astype(np.float64)
    )
    weights = _row_weights(cfg, labels, train_idx) if classification else None
    fitted: list[tuple[dict[str, Any], Any, dict[str, Any], Any]] = []
    for kind in kinds:
        progress(f"fitting candidate {kind}", len(fitted), len(kinds))
        if kind == "logistic":
            fitted.append(_logistic(cfg, x, labels, train_idx, val_idx, task, n_out, weights))
        elif kind == "late":
            fitted.append(
                _late(cfg, data, x, split.table, labels, train_idx, val_idx, task, n_out, weights)
            )
        elif kind == "mlp":
            mlp_cfg = cfg.model_copy(update={"model": "mlp"})
            result, model, architecture = fit_torch(
                mlp_cfg, data, split.table, "mlp", "none", split.y, split.y_np, train_idx,
                val_idx, split.class_weights, split.sample_weights, progress, device,
            )  # fmt: skip
            fitted.append(({"name": "mlp", "params": {}}, model.cpu(), architecture, result))
        else:
            fitted.append(_ensemble(data, fitted, task, n_out))
    score = _score_function(task)
    for info, model, architecture, _ in fitted:
        inputs = model_inputs.matrix_inputs(architecture, x, split.table)
        info["val_score"] = None
        if len(val_idx):
            info["val_score"] = round(score(model, inputs, val_idx, split.y), 6)
    return fitted


def _ensemble(
    data: Artifact,
    members: list[tuple[dict[str, Any], Any, dict[str, Any], Any]],
    task: str,
    n_out: int,
) -> tuple[dict[str, Any], Any, dict[str, Any], None]:
    from mmcli.models.ensemble import EnsembleNet
    from mmcli.stages.fuse import MASK_BLOCK

    mask = next(b for b in data.record.blocks if b.name == MASK_BLOCK)
    architecture = {
        "family": "ensemble",
        "task": task,
        "out_dim": n_out,
        "mask": [mask.start, mask.stop],
        "members": [m[2] for m in members],
    }
    model = EnsembleNet(architecture)
    for slot, (_, member, _, _) in zip(model.members, members, strict=True):
        slot.load_state_dict(member.state_dict())
    info = {"name": "ensemble", "params": {"members": [m[0]["name"] for m in members]}}
    return info, model.eval(), architecture, None


def _row_weights(cfg: TrainConfig, labels: np.ndarray, train_idx: np.ndarray) -> np.ndarray | None:
    """Balanced row weights (sklearn's rule) when --class-weight or --sampler asks for them."""
    if cfg.class_weight != "balanced" and cfg.sampler != "weighted":
        return None
    counts = np.bincount(labels[train_idx])
    per_class = len(train_idx) / (len(counts) * np.maximum(counts, 1))
    return per_class[labels]


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
    strength, (coef, intercept) = late.pick_strength(
        x, labels, train_idx, val_idx, classification, n_out, weights
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
