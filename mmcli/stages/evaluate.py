"""evaluate: score a trained model on a split of its data and write what people and CI read.

Output artifact::

    metrics.json          every number (classification or regression metrics)
    predictions.parquet   per row: _row, _id, split, target, prediction (+ class probabilities)
    confusion_matrix.png  classification; predicted_vs_actual.png for regression
    report.md             a short report a person reads

``--fail-under NAME=VALUE`` gates are checked after the artifact is published, so a
failed gate still leaves the report behind.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts.record import relative_to
from mmcli.config import EvaluateConfig
from mmcli.errors import DataError
from mmcli.stages import Progress, no_progress


@artifacts.exclusive
def run(
    cfg: EvaluateConfig, progress: Progress = no_progress, force: bool = False
) -> dict[str, Any]:
    """Evaluate; the summary's ``gates`` entry says whether every --fail-under gate passed."""
    from mmcli.metrics import check_gates, parse_gates

    gates = parse_gates(cfg.fail_under)
    model_art = artifacts.load(cfg.model, stages=("train",))
    data = artifacts.load(cfg.data, stages=("fuse", "preprocess"))
    if data.fingerprint != model_art.record["inputs"]["upstream"]["fingerprint"]:
        raise DataError(
            f"{cfg.data} is not the data {cfg.model} was trained on",
            hint="evaluate takes the model's own fuse artifact; "
            "to score new rows use `mmcli predict`",
        )
    # Gates decide the exit code, not the content: changing one does not rebuild.
    params = {k: v for k, v in cfg.identity().items() if k != "fail_under"}
    key = artifacts.cache_key(
        "evaluate", params, {"model": model_art.fingerprint, "data": data.fingerprint}
    )
    summary: dict[str, Any] = {"stage": "evaluate", "out": str(cfg.out)}
    record = None if force else artifacts.up_to_date(cfg.out, key)
    if record is not None:
        metrics = json.loads((cfg.out / "metrics.json").read_text(encoding="utf-8"))
        summary.update(status="up-to-date", **record["summary"])
    else:
        metrics = _evaluate(cfg, model_art, data, params, key, progress)
        summary.update(status="built", **_headline(metrics))
    failures = check_gates(metrics, gates)
    summary["gates"] = {
        "checked": [f"{n}={v}" for n, v in gates],
        "failures": failures,
        "passed": not failures,
    }
    return summary


def _evaluate(
    cfg: EvaluateConfig,
    model_art: artifacts.Artifact,
    data: artifacts.Artifact,
    params: dict[str, Any],
    key: str,
    progress: Progress,
) -> dict[str, Any]:
    from mmcli import plots
    from mmcli.metrics import classification_metrics, regression_metrics
    from mmcli.models import training
    from mmcli.stages.model_inputs import artifact_inputs
    from mmcli.stages.train import load_model, to_predictions

    table = data.table("rows.parquet")
    rows = (
        np.arange(len(table))
        if cfg.split == "all"
        else np.flatnonzero(table["_split"].to_numpy() == cfg.split)
    )
    if len(rows) == 0:
        raise DataError(
            f"{cfg.data}: the {cfg.split} split has no rows", hint="choose another with --split"
        )
    progress("predicting", 0, None)
    inputs = artifact_inputs(model_art.record["architecture"], data, table)
    module = load_model(model_art)
    predictions = to_predictions(model_art, training.predict(module, inputs, rows))
    task = model_art.record["task"]
    classes = model_art.record.get("classes") or []
    y = table["_target"].to_numpy()[rows]
    out = pd.DataFrame(
        {
            "_row": table["_row"].to_numpy()[rows],
            "_id": table["_id"].to_numpy()[rows],
            "split": table["_split"].to_numpy()[rows],
        }
    )
    if task == "classification":
        metrics = classification_metrics(y.astype(int), predictions, classes)
        out["target"] = [classes[i] for i in y]
        out["prediction"] = [classes[i] for i in predictions.argmax(1)]
        for i, name in enumerate(classes):
            out[f"prob_{name}"] = predictions[:, i]
    else:
        metrics = regression_metrics(y.astype(float), predictions)
        out["target"], out["prediction"] = y, predictions
    metrics = {"task": task, "split": cfg.split, **metrics}
    inputs = {
        "model": {
            "path": relative_to(model_art.path, cfg.out),
            "fingerprint": model_art.fingerprint,
        },
        "upstream": {
            "stage": "fuse",
            "path": relative_to(data.path, cfg.out),
            "fingerprint": data.fingerprint,
        },
    }
    with artifacts.Builder(cfg.out, stage="evaluate", params=params, inputs=inputs, key=key) as b:
        (b.dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        out.to_parquet(b.dir / "predictions.parquet", index=False)
        if task == "classification":
            plots.confusion_matrix_png(
                metrics["confusion_matrix"], classes, b.dir / "confusion_matrix.png"
            )
        else:
            plots.predicted_vs_actual_png(y, predictions, b.dir / "predicted_vs_actual.png")
        (b.dir / "report.md").write_text(_report(metrics, classes, cfg, model_art))
        b.info["summary"] = _headline(metrics)
    return metrics


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    names = (
        ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "majority_baseline_accuracy")
        if metrics["task"] == "classification"
        else ("mae", "rmse", "r2", "mean_baseline_mae")
    )
    return {
        "split": metrics["split"],
        "rows": metrics["n"],
        "metrics": {n: metrics.get(n) for n in names},
    }


def _report(
    metrics: dict[str, Any], classes: list[str], cfg: EvaluateConfig, model_art: artifacts.Artifact
) -> str:
    arch = model_art.record.get("architecture", {})
    lines = [
        f"# Evaluation: {arch.get('model', '?')} model, {metrics['split']} split",
        "",
        f"- rows: {metrics['n']}",
        f"- task: {metrics['task']}",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for name, value in _headline(metrics)["metrics"].items():
        lines.append(f"| {name} | {'n/a' if value is None else f'{value:.4f}'} |")
    if metrics["task"] == "classification":
        lines += [
            "",
            "## Per class",
            "",
            "| class | precision | recall | f1 | support |",
            "|---|---|---|---|---|",
        ]
        for name in classes:
            c = metrics["per_class"][name]
            lines.append(
                f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | "
                f"{c['f1']:.3f} | {c['support']} |"
            )
        lines += ["", "![confusion matrix](confusion_matrix.png)"]
    else:
        lines += ["", "![predicted vs actual](predicted_vs_actual.png)"]
    return "\n".join(lines) + "\n"
