"""tune: train's hyperparameters searched with Optuna, each trial scored on the val split
(or by K-fold cross-validation on the train+val rows); the test split is never read.

Output artifact::

    trials.csv   one row per trial: number, state (complete or pruned), val score,
                 epochs trained, and its parameters
    best.yaml    the best trial as a train config: ``mmcli train DATA --config best.yaml``
    mmcli.json   the record: space, budget, best trial (its summary too)

The sampler is Optuna's TPE, seeded with ``--seed``, one trial at a time, and every trial
trains with that seed: the same data, parameters and seed give the same trials and the
same bytes. Only ``--timeout`` makes the trial count depend on the machine.

A trial is pruned (stopped early, state ``pruned``) when its score falls below the median
of the earlier trials at the same epoch (or, with folds, after the same fold); the first
``PRUNE_AFTER`` trials always run to the end.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts.record import input_ref
from mmcli.config import TrainConfig, TuneConfig, read_config_file
from mmcli.errors import UsageError
from mmcli.stages import Progress, lean_summary, no_progress, staleness


@dataclass(frozen=True)
class Param:
    """One dimension of a search space: ``int`` or ``float`` on [low, high] (``log``: on a
    log scale), or ``choice`` among ``choices``."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any, name: str) -> Any:
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(name, self.low, self.high, log=self.log)
        return trial.suggest_categorical(name, list(self.choices))

    def describe(self) -> str:
        if self.kind == "choice":
            return " | ".join(str(c) for c in self.choices)
        return f"{self.kind} {self.low:g}..{self.high:g}{' (log)' if self.log else ''}"


_SHARED = {
    "lr": Param("float", 1e-4, 1e-2, log=True),
    "weight_decay": Param("float", 1e-6, 1e-1, log=True),
    "dropout": Param("float", 0.0, 0.5),
    "class_weight": Param("choice", choices=("none", "balanced")),
}
#: What each model's trials vary (train's option of the same name); the rest stays at
#: train's defaults or the ``--base`` file's values.
SPACES: dict[str, dict[str, Param]] = {
    "mlp": {
        "hidden": Param("int", 32, 512, log=True),
        "batch_size": Param("choice", choices=(32, 64, 128)),
        **_SHARED,
    },
    "e2e": {
        "fusion": Param("choice", choices=("concat", "weighted-sum", "gated", "attention")),
        "width": Param("int", 16, 128, log=True),
        "hidden": Param("int", 32, 256, log=True),
        "modality_dropout": Param("float", 0.0, 0.3),
        "augment": Param("choice", choices=("none", "all")),
        **_SHARED,
        "lr": Param("float", 3e-4, 3e-3, log=True),
        "weight_decay": Param("float", 1e-6, 1e-2, log=True),
    },
}
#: Trials that always run to the end before pruning starts; epochs before a trial may be
#: pruned (a score in the first epochs says little).
PRUNE_AFTER, PRUNE_WARMUP_EPOCHS = 5, 10


@artifacts.exclusive
def run(
    cfg: TuneConfig, progress: Progress = no_progress, force: bool = False, dry_run: bool = False
) -> dict[str, Any]:
    """Search, then write the trials and the best config; returns a summary."""
    data = artifacts.load(cfg.data, stages=("fuse", "preprocess"))
    model = _model(cfg, data.stage)
    base = _base(cfg)
    space = _space(cfg, model)
    key = artifacts.cache_key("tune", cfg.identity(), {"upstream": data.fingerprint, "base": base})
    summary: dict[str, Any] = {"stage": "tune", "out": str(cfg.out)}
    done = staleness.answer(cfg.out, key, cfg.identity(), summary, force=force, dry_run=dry_run)
    if done:
        return done
    table = data.table("rows.parquet")
    folds = _folds(cfg, data, table)
    study = _search(cfg, data, model, base, space, folds, progress)
    return _publish(cfg, data, key, model, base, space, study, summary)


def _model(cfg: TuneConfig, data_stage: str) -> str:
    if cfg.model == "auto":
        return "e2e" if data_stage == "preprocess" else "mlp"
    if (cfg.model == "e2e") != (data_stage == "preprocess"):
        needs = "a preprocess" if cfg.model == "e2e" else "a fuse"
        raise UsageError(f"tune --model {cfg.model} runs on {needs} artifact, not {data_stage}")
    return cfg.model


def _base(cfg: TuneConfig) -> dict[str, Any]:
    """The ``--base`` file's train parameters, checked as train checks them."""
    if cfg.base is None:
        return {}
    values = {k.replace("-", "_"): v for k, v in read_config_file(cfg.base).items()}
    for key in ("data", "out"):
        if key in values:
            raise UsageError(f"{cfg.base}: {key} is tune's own argument, not a trial parameter")
    _train_config(cfg, values)  # unknown keys and wrong types, before any trial
    return values


def _space(cfg: TuneConfig, model: str) -> dict[str, Param]:
    from mmcli.messages import did_you_mean

    space = dict(SPACES[model])
    if cfg.fusion != "auto":
        space.pop("fusion", None)
    names = [n.strip() for item in cfg.params for n in item.split(",") if n.strip()]
    for name in names:
        if name not in space:
            raise UsageError(
                f"--params {name!r}: not in the {model} search space"
                + did_you_mean(name, list(space)),
                hint="the space: " + ", ".join(space),
            )
    return {n: p for n, p in space.items() if not names or n in names}


def _fixed(cfg: TuneConfig, model: str) -> dict[str, Any]:
    """What tune's own options fix in every trial: the model, and a fusion named."""
    return {"model": model, **({"fusion": cfg.fusion} if cfg.fusion != "auto" else {})}


def _train_config(cfg: TuneConfig, values: dict[str, Any]) -> TrainConfig:
    from mmcli.config import build

    flags = {"data": cfg.data, "out": cfg.out, "seed": cfg.seed, "device": cfg.device}
    flags["workers"] = cfg.workers
    return build(TrainConfig, {**values, **flags}, None)  # type: ignore[no-any-return]


@dataclass
class _Fold:
    table: pd.DataFrame  # ``_split`` rewritten: this fold's train and val rows
    train_idx: np.ndarray
    val_idx: np.ndarray


def _folds(cfg: TuneConfig, data: artifacts.Artifact, table: pd.DataFrame) -> list[_Fold]:
    """The train/val pairs each trial is scored on: the split's own, or K folds."""
    split = table["_split"].to_numpy()
    if not cfg.folds:
        val = np.flatnonzero(split == "val")
        if not len(val):
            raise UsageError(
                f"{cfg.data}: no val rows to score trials on",
                hint="use --folds K (cross-validation on the train rows)",
            )
        return [_Fold(table, np.flatnonzero(split == "train"), val)]
    from sklearn.model_selection import KFold, StratifiedKFold

    rows = np.flatnonzero(split != "test")
    y = table["_target"].to_numpy()[rows]
    classification = data.record.table.target.task == "classification"
    if classification:
        present = np.bincount(y.astype(np.int64))
        smallest = int(present[present > 0].min())
        if smallest < cfg.folds:
            raise UsageError(
                f"--folds {cfg.folds}: a class has only {smallest} train+val rows",
                hint=f"use --folds {max(smallest, 2)} or fewer" if smallest >= 2 else None,
            )
    elif len(rows) < cfg.folds:
        raise UsageError(f"--folds {cfg.folds}: only {len(rows)} train+val rows")
    splitter = (StratifiedKFold if classification else KFold)(
        cfg.folds, shuffle=True, random_state=cfg.seed
    )
    folds = []
    for fit, held in splitter.split(rows, y):
        fold_split = split.copy()
        fold_split[rows[fit]], fold_split[rows[held]] = "train", "val"
        fold_table = table.assign(_split=fold_split)
        folds.append(_Fold(fold_table, np.sort(rows[fit]), np.sort(rows[held])))
    return folds


def _search(
    cfg: TuneConfig,
    data: artifacts.Artifact,
    model: str,
    base: dict[str, Any],
    space: dict[str, Param],
    folds: list[_Fold],
    progress: Progress,
) -> Any:
    import optuna

    from mmcli.models import distributed
    from mmcli.stages import train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device = distributed.resolve_device(cfg.device)
    target = data.record.table.target
    by_epoch = len(folds) == 1
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=PRUNE_AFTER, n_warmup_steps=PRUNE_WARMUP_EPOCHS if by_epoch else 0
        )
        if cfg.prune == "median"
        else optuna.pruners.NopPruner()
    )
    sampler = optuna.samplers.TPESampler(
        seed=cfg.seed, n_startup_trials=max(1, min(10, cfg.trials // 2))
    )
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)

    def objective(trial: Any) -> float:
        values = {name: p.suggest(trial, name) for name, p in space.items()}
        trial_cfg = _train_config(cfg, {**base, **values, **_fixed(cfg, model)})
        kind, fusion = train.resolve_design(trial_cfg, data.stage)
        augment = train.resolve_augment(trial_cfg.augment, kind)
        trial_cfg = trial_cfg.model_copy(update={"augment": augment})
        scores, epochs = [], []
        for k, fold in enumerate(folds):

            def on_epoch(result: Any) -> None:
                if by_epoch and result.best_epoch:
                    best = result.history[result.best_epoch - 1]["val_score"]
                    trial.report(best, len(result.history))
                    if trial.should_prune():
                        trial.set_user_attr("epochs", len(result.history))
                        raise optuna.TrialPruned()

            y, y_np, _, class_weights, sample_weights = train.targets(
                trial_cfg, target, fold.table, fold.train_idx
            )
            result, _, _ = train.fit_torch(
                trial_cfg, data, fold.table, kind, fusion, y, y_np, fold.train_idx,
                fold.val_idx, class_weights, sample_weights, no_progress, device, on_epoch,
            )  # fmt: skip
            scores.append(result.history[result.best_epoch - 1]["val_score"])
            epochs.append(len(result.history))
            trial.set_user_attr("epochs", int(sum(epochs)))
            if not by_epoch:
                trial.report(float(np.mean(scores)), k + 1)
                if k + 1 < len(folds) and trial.should_prune():
                    raise optuna.TrialPruned()
        return float(np.mean(scores))

    def after(study: Any, trial: Any) -> None:
        best = _best_value(study)
        line = "trials"
        if best is not None:
            line += f" | best val {_metric(target.task)} {best:.4f}"
        progress(line, trial.number + 1, cfg.trials)

    progress("trials", 0, cfg.trials)
    study.optimize(objective, n_trials=cfg.trials, timeout=cfg.timeout, callbacks=[after])
    return study


def _best_value(study: Any) -> float | None:
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return max((t.value for t in done), default=None)


def _metric(task: str) -> str:
    return "macro_f1" if task == "classification" else "r2"


def _publish(
    cfg: TuneConfig,
    data: artifacts.Artifact,
    key: str,
    model: str,
    base: dict[str, Any],
    space: dict[str, Param],
    study: Any,
    summary: dict[str, Any],
) -> dict[str, Any]:
    import optuna
    import yaml

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise UsageError(
            f"{cfg.data}: no trial finished within --timeout {cfg.timeout:g} s",
            hint="raise --timeout",
        )
    best = max(complete, key=lambda t: (t.value, -t.number))  # a tie keeps the earlier
    best_config = {**base, **best.params, **_fixed(cfg, model), "seed": cfg.seed}
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    task = data.record.table.target.task
    summary.update(
        {
            "status": "built",
            "model": model,
            "trials": len(study.trials),
            "pruned": pruned,
            "scored_on": f"{cfg.folds}-fold cross-validation" if cfg.folds else "val split",
            "metric": _metric(task),
            "best_trial": best.number,
            "best_score": round(float(best.value), 6),
            "best_params": best.params,
        }
    )
    if len(study.trials) < cfg.trials:
        summary["stopped"] = f"--timeout {cfg.timeout:g} s: {len(study.trials)} trials ran"
    inputs = {"upstream": input_ref(data, cfg.out)}
    with artifacts.Builder(
        cfg.out, stage="tune", params=cfg.identity(), inputs=inputs, key=key, seed=cfg.seed
    ) as build:
        (build.dir / "trials.csv").write_text(_trials_csv(study, space))
        header = (
            f"# train config of tune trial {best.number} ({_metric(task)} {best.value:.4f} "
            f"on the {summary['scored_on']}); use: mmcli train DATA --config best.yaml\n"
        )
        (build.dir / "best.yaml").write_text(header + yaml.safe_dump(best_config, sort_keys=True))
        build.info.update(
            {
                "space": {name: p.describe() for name, p in space.items()},
                "base": base,
                "best": {"trial": best.number, "score": float(best.value), "params": best_config},
                "summary": lean_summary(summary),
            }
        )
    # Where it lies is not what it is: the next step is said, not recorded.
    summary["train_with"] = f"mmcli train {cfg.data} --config {cfg.out / 'best.yaml'}"
    return summary


def _trials_csv(study: Any, space: dict[str, Param]) -> str:
    """number, state, score, epochs, then each parameter: the same bytes for the same search."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "state", "score", "epochs", *space])
    for t in study.trials:
        score = t.value if t.value is not None else _last(t.intermediate_values)
        writer.writerow(
            [
                t.number,
                t.state.name.lower(),
                "" if score is None or math.isnan(score) else repr(round(float(score), 6)),
                t.user_attrs.get("epochs", ""),
                *(t.params.get(name, "") for name in space),
            ]
        )
    return buffer.getvalue()


def _last(values: dict[int, float]) -> float | None:
    return values[max(values)] if values else None
