"""train: a model on a fuse artifact (a head, or learned fusion over its column blocks), or
end to end on a preprocess artifact (a CNN per image, an RNN per text, a CNN over log-mel
per audio column, fused inside the network).

Output artifact::

    model.safetensors  the weights of the best val epoch (never a pickle)
    history.json       per-epoch train/val loss and val score
    curve.png          the same as a plot
    mmcli.json         architecture (with vocabularies), classes, target scaling: all that
                       evaluate and predict need to rebuild the model
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts.record import Artifact, input_ref
from mmcli.artifacts.records import TableSchema, Target
from mmcli.config import TrainConfig
from mmcli.errors import DataError, MissingInputError, UsageError
from mmcli.models import build_model
from mmcli.stages import Progress, lean_summary, no_progress, staleness


def resolve_design(cfg: TrainConfig, data_stage: str) -> tuple[str, str]:
    """(model, fusion) once ``auto`` is decided by the kind of data artifact."""
    if data_stage == "preprocess":
        if cfg.model not in ("auto", "e2e"):
            raise UsageError(
                f"--model {cfg.model} trains on a fuse artifact",
                hint="use --model e2e on a preprocess artifact",
            )
        fusion = "concat" if cfg.fusion == "auto" else cfg.fusion
        if fusion == "none":
            raise UsageError("--model e2e needs a fusion: concat, weighted-sum, gated or attention")
        return "e2e", fusion
    if cfg.model == "e2e":
        raise UsageError("--model e2e trains on a preprocess artifact, not a fuse artifact")
    fusion = "none" if cfg.fusion == "auto" else cfg.fusion
    if cfg.model == "late" and fusion != "none":
        raise UsageError(
            f"--model late is its own fusion: it takes no --fusion {fusion}",
            hint="leave --fusion out, or use --model mlp with it",
        )
    if cfg.model == "auto" and fusion != "none":
        return "mlp", fusion  # learned fusion over the blocks: an MLP head on top
    return cfg.model, fusion


def resolve_loss(loss: str, task: str) -> str:
    """The loss once ``auto`` is decided by the task (classification always uses
    cross-entropy)."""
    if task == "classification":
        return "cross-entropy"
    return "mse" if loss == "auto" else loss


def resolve_augment(augment: str, model_kind: str) -> str:
    """Augmentation once ``auto`` is decided: on for e2e, whose towers learn from pixels,
    spectra and tokens (val macro-F1 +0.006 and +0.031 on two generated sets of 2,000
    rows); off for models on frozen features, which it does not change."""
    if augment != "auto":
        return augment
    return "all" if model_kind == "e2e" else "none"


@artifacts.exclusive
def run(
    cfg: TrainConfig,
    progress: Progress = no_progress,
    force: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Train with early stopping on the val split; returns a summary."""
    data = artifacts.load(cfg.data, stages=("fuse", "preprocess"))
    model_kind, fusion = resolve_design(cfg, data.stage)
    # The key and the record hold resolved values: naming a default changes nothing.
    cfg = cfg.model_copy(
        update={
            "model": model_kind,
            "fusion": fusion,
            "loss": resolve_loss(cfg.loss, data.record.table.target.task),
            "augment": resolve_augment(cfg.augment, model_kind),
        }
    )
    key = artifacts.cache_key("train", cfg.identity(), {"upstream": data.fingerprint})
    summary: dict[str, Any] = {"stage": "train", "out": str(cfg.out)}
    done = staleness.answer(cfg.out, key, cfg.identity(), summary, force=force, dry_run=dry_run)
    if done:
        return done
    from mmcli.models import distributed

    device = distributed.resolve_device(cfg.device)
    distributed.start(device)  # a no-op unless launched by torchrun
    try:
        return _train(cfg, data, model_kind, fusion, key, summary, device, progress)
    finally:
        distributed.stop()


def _train(
    cfg: TrainConfig,
    data: artifacts.Artifact,
    model_kind: str,
    fusion: str,
    key: str,
    summary: dict[str, Any],
    device: Any,
    progress: Progress,
) -> dict[str, Any]:
    from mmcli.models import distributed

    schema: TableSchema = data.record.table
    target = schema.target
    task = target.task
    table = data.table("rows.parquet")
    split = table["_split"].to_numpy()
    train_idx, val_idx = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    y, y_np, scale, class_weights, sample_weights = targets(cfg, target, table, train_idx)

    if model_kind in ("auto", "late"):
        from mmcli.stages import auto

        result, model, architecture = auto.search(
            cfg, data, table, y, y_np, train_idx, val_idx,
            class_weights, sample_weights, progress, device,
        )  # fmt: skip
        summary["candidates"] = auto.candidate_scores(result.candidates)
        summary["chosen"] = result.chosen
        summary["chosen_on"] = result.scored_on
    else:
        result, model, architecture = fit_torch(
            cfg, data, table, model_kind, fusion, y, y_np, train_idx, val_idx,
            class_weights, sample_weights, progress, device,
        )  # fmt: skip
    summary.update({"status": "built", "model": model_kind, "fusion": fusion, "task": task})
    if result.history:  # trained by epochs (a model fitted in closed form has none)
        summary.update({"epochs": len(result.history), "best_epoch": result.best_epoch})
    if len(val_idx):
        best = result.history[result.best_epoch - 1] if result.history else {}
        summary["val_score"] = getattr(result, "val_score", best.get("val_score"))
        summary["val_metric"] = "macro_f1" if task == "classification" else "r2"
        if result.stopped_early:
            summary["early_stopping"] = f"stopped: no better val loss in {cfg.patience} epochs"
    elif model_kind == "auto":
        pass  # chosen by cross-validation, or kept by rule: summary["chosen_on"] says which
    else:  # the split has no val rows (a split column without them, or --val-fraction 0)
        summary["early_stopping"] = "off: no val rows, the last epoch is kept"
    weights = getattr(model, "fusion_weights", lambda: None)()
    if weights is not None:
        names = [c["name"] for c in architecture["columns"]]
        summary["fusion_weights"] = dict(zip(names, weights, strict=True))
    if distributed.world() > 1:
        summary["processes"] = distributed.world()
        if distributed.rank() > 0:  # every process holds the same weights; rank 0 writes
            return summary
    _publish(cfg, data, key, model, result, architecture, schema, scale, summary)
    return summary


def fit_torch(
    cfg: TrainConfig,
    data: Artifact,
    table: pd.DataFrame,
    model_kind: str,
    fusion: str,
    y: Any,
    y_np: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    class_weights: Any,
    sample_weights: Any,
    progress: Progress,
    device: Any,
    on_epoch: Any = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """Train one torch model (a head, learned fusion or e2e) with early stopping on val:
    (fit result, model, architecture). ``on_epoch``: as ``training.fit``'s."""
    import torch

    from mmcli.models import training

    task = data.record.table.target.task
    split = table["_split"].to_numpy()
    progress("preparing inputs", 0, None)
    architecture, inputs = _design(
        cfg,
        data,
        table,
        split == "train",
        model_kind,
        fusion,
        len(data.record.table.target.classes or []) or 1,
        progress,
    )
    generator = training.seed_everything(cfg.seed)
    model = build_model(architecture)
    augment, augment_rows = _augmentation(cfg, architecture, y_np, train_idx, task)
    threads = 1 if data.stage == "fuse" else torch.get_num_threads()
    with _deterministic(torch), _threads(torch, threads), _diverged(cfg, table):
        result = training.fit(
            model,
            inputs,
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
            score=scorer(task),
            progress=progress,
            sample_weights=sample_weights,
            augment=augment,
            augment_rows=augment_rows,
            workers=cfg.workers,
            device=device,
            score_name="macro_f1" if task == "classification" else "r2",
            on_epoch=on_epoch,
        )
    return result, model, architecture


def _publish(
    cfg: TrainConfig,
    data: artifacts.Artifact,
    key: str,
    model: Any,
    result: Any,
    architecture: dict[str, Any],
    schema: TableSchema,
    scale: Any,
    summary: dict[str, Any],
) -> None:
    """Write the model artifact: weights, history, curve and all that predict needs."""
    target = schema.target
    inputs_record = {"upstream": input_ref(data, cfg.out)}
    with artifacts.Builder(
        cfg.out,
        stage="train",
        params=cfg.identity(),
        inputs=inputs_record,
        key=key,
        seed=cfg.seed,
    ) as build:
        from safetensors.torch import save_file

        from mmcli import plots

        save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()},
            str(build.dir / "model.safetensors"),
        )
        (build.dir / "history.json").write_text(json.dumps(result.history, indent=1) + "\n")
        if result.history:
            plots.training_curve_png(
                result.history,
                build.dir / "curve.png",
                best_epoch=result.best_epoch,
                metric="macro_f1" if target.task == "classification" else "r2",
            )
        build.info.update(
            {
                "architecture": architecture,
                "task": target.task,
                "classes": target.classes,
                "target_scale": scale,
                "best_epoch": result.best_epoch or None,
                "candidates": getattr(result, "candidates", None),
                "schema": schema,
                "summary": lean_summary(summary),
            }
        )


class _diverged:
    """A loss that stops being finite (``training.Diverged``) as a DataError naming the row."""

    def __init__(self, cfg: TrainConfig, table: pd.DataFrame):
        self.cfg, self.table = cfg, table

    def __enter__(self) -> None:
        pass

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        from mmcli.models.training import Diverged

        if isinstance(exc, Diverged):
            where = (
                ""
                if exc.row is None
                else f"; row {self.table['_row'].iloc[exc.row]}'s output first"
            )
            raise DataError(
                f"{self.cfg.data}: training diverged at epoch {exc.epoch}: the loss is not a "
                f"finite number{where}",
                hint="look for huge values in the inputs or the target; else lower --lr",
            ) from None


def targets(
    cfg: TrainConfig, target: Target, table: pd.DataFrame, train_idx: np.ndarray
) -> tuple[Any, np.ndarray, dict, Any, Any]:
    """(y tensor, y array, target scale, class weights, sample weights), fitted on
    ``train_idx``: a regression target standardised, balanced weights when asked for."""
    import torch

    y_np = table["_target"].to_numpy().copy()
    scale = {"mean": 0.0, "std": 1.0}
    if target.task == "regression":
        # Standardise the target so the same learning rate suits any unit.
        y_np = y_np.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            scale = {"mean": float(y_np[train_idx].mean()), "std": float(y_np[train_idx].std())}
            scale["std"] = scale["std"] or 1.0
            z = ((y_np - scale["mean"]) / scale["std"]).astype(np.float32)
        _check_target(cfg, target, table, y_np, z, scale)
        y = torch.as_tensor(z)[:, None]
        return y, y_np, scale, None, None
    classes = target.classes or []
    n_classes = len(classes)
    counts = np.bincount(y_np[train_idx], minlength=n_classes)
    if (counts == 0).any():
        missing = [c for c, k in zip(classes, counts, strict=True) if k == 0]
        raise DataError(f"{cfg.data}: classes {missing} have no train rows")
    balanced = len(train_idx) / (n_classes * counts)  # sklearn's "balanced" weights
    class_weights = (
        torch.as_tensor(balanced, dtype=torch.float32) if cfg.class_weight == "balanced" else None
    )
    sample_weights = (
        torch.as_tensor(balanced[y_np[train_idx]], dtype=torch.float64)
        if cfg.sampler == "weighted"
        else None
    )
    return torch.as_tensor(y_np, dtype=torch.long), y_np, scale, class_weights, sample_weights


def _check_target(
    cfg: TrainConfig,
    target: Target,
    table: pd.DataFrame,
    y_np: np.ndarray,
    z: np.ndarray,
    scale: dict[str, float],
) -> None:
    """A regression target the model cannot learn in float32 is a DataError naming a row:
    train-split statistics that overflow (values past about 1e154), or a value that
    standardises past float32's range."""
    stats_ok = all(np.isfinite(v) for v in scale.values())
    bad = np.flatnonzero(~np.isfinite(z))
    if stats_ok and not len(bad):
        return
    at = int(np.argmax(np.abs(y_np))) if not stats_ok or not len(bad) else int(bad[0])
    why = (
        "the train split's mean or standard deviation overflows"
        if not stats_ok
        else f"standardised with the train split's mean {scale['mean']:g} and std "
        f"{scale['std']:g} it passes float32's largest value"
    )
    raise DataError(
        f"{cfg.data}: target {target.name!r}, row {table['_row'].iloc[at]}: value "
        f"{y_np[at]:g} is too large to learn: {why}",
        hint="fix or remove the value in the manifest, then rerun",
    )


def _design(
    cfg: TrainConfig,
    data: Artifact,
    table: pd.DataFrame,
    train: np.ndarray,
    model_kind: str,
    fusion: str,
    out_dim: int,
    progress: Progress,
) -> tuple[dict, list]:
    """The architecture to store and the input tensors to train it on."""
    import torch

    from mmcli.stages import model_inputs

    head = {
        "model": "mlp" if model_kind == "e2e" else model_kind,
        "hidden": cfg.hidden,
        "dropout": cfg.dropout,
    }
    if model_kind == "e2e":
        from mmcli.stages.extract_features import load_prep_arrays

        columns = model_inputs.fit_e2e_specs(data.record.table, table, train, cfg.identity())
        inputs = model_inputs.e2e_inputs(table, load_prep_arrays(data), columns, progress)
    elif fusion != "none":
        columns = model_inputs.block_specs(data.record)
        x = model_inputs.fused_matrix(data)
        inputs = model_inputs.block_inputs(x, table, columns)
    else:
        x = torch.from_numpy(model_inputs.fused_matrix(data))
        return (
            {
                "family": "head",
                "model": model_kind,
                "in_dim": int(x.shape[1]),
                "out_dim": out_dim,
                "hidden": cfg.hidden,
                "dropout": cfg.dropout,
            },
            [x],
        )
    architecture = {
        "family": "multimodal",
        "columns": columns,
        "fusion": fusion,
        "width": cfg.width,
        "head": head,
        "out_dim": out_dim,
        "modality_dropout": cfg.modality_dropout,
    }
    return architecture, inputs


def _augmentation(
    cfg: TrainConfig, architecture: dict, y_np: np.ndarray, train_idx: np.ndarray, task: str
) -> tuple[Any, set[int] | None]:
    if cfg.augment == "none" or architecture["family"] != "multimodal":
        return None, None
    from mmcli.models.augment import augment_row, minority_rows

    towers = [c["tower"] for c in architecture["columns"]]

    def augment(row: list, epoch: int, index: int) -> list:
        return augment_row(row, towers, cfg.seed, epoch, index)

    if cfg.augment == "minority":
        if task != "classification":
            raise UsageError("--augment minority needs a classification target")
        return augment, minority_rows(y_np, train_idx)
    return augment, None


def load_model(model_art: Artifact) -> Any:
    """Rebuild the trained torch module from its artifact; refuses mismatched weights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    module = build_model(model_art.record.architecture)
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


def to_predictions(model_art: Artifact, outputs: Any, bad: np.ndarray | None = None) -> np.ndarray:
    """Raw model outputs -> class probabilities (n, k) or values in target units (n,).

    An output that is not a finite number (inputs too large for the network, a value
    past float32 after scaling back) is never turned into a prediction: with ``bad``
    (one flag per row) its row is flagged and given zeros; without, a DataError.
    """
    import torch

    record = model_art.record
    outputs = outputs.double()
    finite = torch.isfinite(outputs).reshape(len(outputs), -1).all(dim=1).numpy()
    outputs = torch.where(torch.isfinite(outputs), outputs, torch.zeros_like(outputs))
    if record.task == "classification":
        proba = torch.softmax(outputs, dim=1).numpy()
        predictions = proba / proba.sum(axis=1, keepdims=True)
    else:
        scale = record.target_scale
        with np.errstate(over="ignore", invalid="ignore"):
            predictions = outputs[:, 0].numpy() * scale.std + scale.mean
        finite &= np.isfinite(predictions)
    if finite.all():
        return predictions
    if bad is None:
        first = int(np.flatnonzero(~finite)[0])
        raise DataError(
            f"{model_art.path}: the model's output is not a finite number for "
            f"{int((~finite).sum())} of {len(finite)} rows scored (first: number {first} of "
            "them, counting from 0); their inputs are too large for the network",
            hint="look for huge values in the inputs of those rows",
        )
    bad |= ~finite
    predictions[~finite] = 0.0
    return predictions


def scorer(task: str) -> Any:
    from sklearn.metrics import f1_score, r2_score

    def score(out: Any, y: Any) -> float:
        if task == "classification":
            return float(
                f1_score(y.numpy(), out.argmax(1).numpy(), average="macro", zero_division=0)
            )
        return float(r2_score(y.numpy(), out.numpy())) if len(y) > 1 else 0.0

    return score


class _threads:
    """torch's intra-op threads for the duration of training, restored afterwards.

    Models on a fuse artifact (heads, learned fusion over feature blocks) train on one
    thread: their operations are too small to share. On 2 cores, the MLP head took the
    same 10 s on one thread as on two, and beside two busy processes 19 s wall and 12 s
    CPU against 23-54 s and 15-48 s (``benchmarks/contention.py``). e2e's convolutions
    keep every thread.
    """

    def __init__(self, torch: Any, threads: int):
        self.torch, self.threads = torch, threads

    def __enter__(self) -> None:
        self.previous = self.torch.get_num_threads()
        self.torch.set_num_threads(self.threads)

    def __exit__(self, *exc: Any) -> None:
        self.torch.set_num_threads(self.previous)


class _deterministic:
    """Deterministic torch kernels for the duration of training, restored afterwards."""

    def __init__(self, torch: Any):
        self.torch = torch

    def __enter__(self) -> None:
        self.previous = self.torch.are_deterministic_algorithms_enabled()
        self.torch.use_deterministic_algorithms(True)

    def __exit__(self, *exc: Any) -> None:
        self.torch.use_deterministic_algorithms(self.previous)
