"""evaluate: score a trained model on a split of its data, or on a new labelled table, and
write what people and CI read.

``evaluate MODEL DATA`` scores a split of the artifact the model was trained on;
``evaluate MODEL TABLE`` (a CSV, TSV, Parquet or JSONL file) runs every row of a new table
through the model's stored chain as ``predict`` does, nothing refitted, and scores the
rows that could be read (``rejected.parquet`` lists the others; ``files.parquet`` the
media files hashed, which ``mmcli status`` checks).

Output artifact::

    metrics.json          every number (classification or regression metrics)
    predictions.parquet   per row: _row, _id, split, target, prediction (+ class probabilities)
    confusion_matrix.png  classification (with reliability, ROC and PR curves);
                          predicted_vs_actual.png and residuals.png for regression
    summary.json          the headline numbers, flat (for `dvc metrics show/diff`)
    report.md             a short report a person reads (report.html: the same, one page)
    worst/                the worst rows' media as the model saw them (thumbnails, clips)

``--fail-under NAME=VALUE`` gates are checked after the artifact is published, so a
failed gate still leaves the report behind.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts.hashing import file_sha256
from mmcli.artifacts.record import input_ref, relative_to
from mmcli.artifacts.records import TableSchema
from mmcli.config import EvaluateConfig
from mmcli.errors import DataError, MissingInputError, MmcliError
from mmcli.stages import Progress, no_progress, staleness


@artifacts.exclusive
def run(
    cfg: EvaluateConfig,
    progress: Progress = no_progress,
    force: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Evaluate; the summary's ``gates`` entry says whether every --fail-under gate passed."""
    from mmcli.metrics import check_gate_names, parse_gates

    gates = parse_gates(cfg.fail_under)
    model_art = _load_model(cfg)  # its record only: the gates are checked before any work
    check_gate_names(gates, model_art.record.task)  # before any work
    if is_table(cfg.data):
        return _run_on_table(cfg, model_art, gates, progress, force, dry_run)
    data = artifacts.load(cfg.data, stages=("fuse", "preprocess"))
    if data.fingerprint != model_art.record.inputs.upstream.fingerprint:
        raise DataError(
            f"{cfg.data} is not the data {cfg.model} was trained on",
            hint="evaluate takes the model's own fuse artifact; "
            "to score new rows use `mmcli predict`",
        )
    # The report states the gates' result: a changed gate rebuilds the evaluation.
    params = cfg.identity()
    key = artifacts.cache_key(
        "evaluate", params, {"model": model_art.fingerprint, "data": data.fingerprint}
    )
    summary: dict[str, Any] = {"stage": "evaluate", "out": str(cfg.out)}
    record = None if force else staleness.current(cfg.out, key)
    if record is None and dry_run:
        why = staleness.rebuild_reason(cfg.out, params)
        return {**summary, "status": "would-build", "why": why}
    if record is not None:
        metrics = artifacts.load(cfg.out).json("metrics.json")
        summary.update(status="up-to-date", **record.summary)
    else:
        metrics = _evaluate(cfg, model_art, data, params, key, progress)
        summary.update(status="built", **_headline(metrics))
    return _with_gates(summary, metrics, gates)


def _with_gates(
    summary: dict[str, Any], metrics: dict[str, Any], gates: list[tuple[str, float]]
) -> dict[str, Any]:
    """``summary`` with its ``gates`` entry: what was checked, what failed, whether all passed."""
    from mmcli.metrics import check_gates

    failures = check_gates(metrics, gates)
    summary["gates"] = {
        "checked": [f"{n}={v}" for n, v in gates],
        "failures": failures,
        "passed": not failures,
    }
    return summary


def is_table(path: Path) -> bool:
    """Whether DATA names a table file (``evaluate MODEL TABLE``) rather than an artifact."""
    from mmcli.io.tables import FORMATS

    return path.suffix.lower() in FORMATS and not path.is_dir()


def _load_model(cfg: EvaluateConfig) -> artifacts.Artifact:
    """The MODEL artifact; when it is not one but DATA is, the error says they are swapped."""
    try:
        return artifacts.load(cfg.model, stages=("train",))
    except MissingInputError as exc:
        try:
            swapped = artifacts.load(cfg.data, stages=("train",))
        except MmcliError:
            raise exc from None
        raise MissingInputError(
            exc.message,
            hint=f"did you swap MODEL and DATA? {swapped.path} is the model: "
            f"`mmcli evaluate {cfg.data} {cfg.model}`",
        ) from None


def _run_on_table(
    cfg: EvaluateConfig,
    model_art: artifacts.Artifact,
    gates: list[tuple[str, float]],
    progress: Progress,
    force: bool,
    dry_run: bool,
) -> dict[str, Any]:
    """Score the model on a new labelled table (``cfg.data`` is a file): its rows go
    through the stored chain as in ``predict``, nothing refitted, and every row is
    scored (``--split`` does not apply). Rows that cannot be read are left out, counted
    and listed in ``rejected.parquet``; the key holds the table's and its files' hashes."""
    from mmcli.artifacts.filecache import cache_path
    from mmcli.io.tables import read_table
    from mmcli.stages.media import hash_sources, media_cells

    schema = _table_schema(model_art)
    df = read_table(cfg.data)
    target = schema.target.name
    if target not in df.columns:
        raise DataError(
            f"{cfg.data}: no target column {target!r} to score against",
            hint="evaluate scores labelled rows; for rows without labels use `mmcli predict`",
        )
    if len(df) == 0:
        raise DataError(f"{cfg.data}: the table has a header but no rows")
    root = (cfg.data_root or cfg.data.parent).resolve()
    sources = hash_sources(media_cells(df, schema), root, cache_path(cfg.out))
    params = {k: v for k, v in cfg.identity().items() if k != "split"}
    key = artifacts.cache_key(
        "evaluate",
        params,
        {
            "model": model_art.fingerprint,
            "table": file_sha256(cfg.data),
            "files": sources.fingerprint(),
        },
    )
    summary: dict[str, Any] = {"stage": "evaluate", "out": str(cfg.out)}
    record = None if force else staleness.current(cfg.out, key)
    if record is None and dry_run:
        return {
            **summary,
            "status": "would-build",
            "why": staleness.rebuild_reason(cfg.out, params),
        }
    if record is not None:
        metrics = artifacts.load(cfg.out).json("metrics.json")
        summary.update(status="up-to-date", **record.summary)
    else:
        job = _TableJob(cfg, model_art, schema, df, root, sources, params, key)
        metrics = _evaluate_table(job, progress)
        summary.update(status="built", **_headline(metrics))
    return _with_gates(summary, metrics, gates)


def _table_schema(model_art: artifacts.Artifact) -> TableSchema:
    """The schema the model's chain decoded with, for a new table: no split column (every
    row is scored)."""
    schema: TableSchema = model_art.find("preprocess").record.table
    return schema.model_copy(update={"split_column": None})


@dataclass
class _TableJob:
    """A new labelled table to score (``evaluate MODEL TABLE``), and what it is scored with."""

    cfg: EvaluateConfig
    model_art: artifacts.Artifact
    schema: TableSchema
    df: pd.DataFrame
    root: Path
    sources: Any
    params: dict[str, Any]
    key: str


def _evaluate_table(job: _TableJob, progress: Progress) -> dict[str, Any]:
    from mmcli.stages.predict import model_predictions
    from mmcli.stages.preprocess import prepare
    from mmcli.stages.train import load_model

    module = load_model(job.model_art)
    if job.schema.id_column not in job.df.columns:
        job.schema = job.schema.model_copy(update={"id_column": None})
    with tempfile.TemporaryDirectory(prefix="mmcli-evaluate-") as scratch:
        prepared = prepare(
            job.df,
            job.schema,
            job.root,
            Path(scratch),
            on_error="skip",
            sources=job.sources,
            progress=progress,
        )
        rows = prepared.table
        failures: dict[int, str] = {}
        progress("predicting", 0, None)
        predictions = model_predictions(
            job.model_art, module, rows, prepared.arrays, failures, progress
        )
        # Inside the scratch folder: the worst rows' media come from its decoded arrays.
        return _score_table(job, prepared, predictions, failures)


def _score_table(
    job: _TableJob, prepared: Any, predictions: np.ndarray, failures: dict[int, str]
) -> dict[str, Any]:
    """Score the rows of a new table that could be predicted, and publish the evaluation."""
    rows = prepared.table
    rejects = [r for r in prepared.rejects if r["action"] == "rejected"]
    rejects += [
        {
            "row": int(rows["_row"].iloc[i]),
            "column": why.split(":")[0],
            "reason": why,
            "action": "rejected",
        }
        for i, why in sorted(failures.items())
    ]
    scored = np.array([i for i in range(len(rows)) if i not in failures], dtype=np.int64)
    if len(scored) == 0:
        first = "; ".join(f"row {r['row']}: {r['reason']}" for r in rejects[:3])
        raise DataError(
            f"{job.cfg.data}: none of its {len(job.df)} rows could be scored (first: {first})",
            hint=f"file paths resolve against {job.root}; --data-root FOLDER changes that",
        )
    task, classes = job.model_art.record.task, job.model_art.record.classes or []
    predictions = predictions[scored]
    y = rows["_target"].to_numpy()[scored]
    out = pd.DataFrame(
        {
            "_row": rows["_row"].to_numpy()[scored],
            "_id": rows["_id"].to_numpy()[scored],
            "split": "table",
        }
    )
    y, metrics = score(task, y, predictions, classes)
    out = _prediction_table(out, y, predictions, classes, task)
    names = [c.name for c in job.schema.manifest_columns()]
    metrics["worst"] = _worst(job.df[names].to_dict(orient="records"), out, predictions, y, task)
    metrics = {
        "task": task,
        "split": "table",
        "table": relative_to(job.cfg.data, job.cfg.out),
        "rows_rejected": len(rejects),
        **metrics,
    }
    record_inputs = {
        "model": {
            "path": relative_to(job.model_art.path, job.cfg.out),
            "fingerprint": job.model_art.fingerprint,
        },
        "manifest": {
            "path": relative_to(job.cfg.data, job.cfg.out),
            "sha256": file_sha256(job.cfg.data),
        },
        "files": job.sources.fingerprint(),
    }
    with artifacts.Builder(
        job.cfg.out, stage="evaluate", params=job.params, inputs=record_inputs, key=job.key
    ) as b:
        out.to_parquet(b.dir / "predictions.parquet", index=False)
        pd.DataFrame(rejects, columns=["row", "column", "reason", "action"]).to_parquet(
            b.dir / "rejected.parquet", index=False
        )
        job.sources.table().to_parquet(b.dir / "files.parquet", index=False)  # what status names
        positions = {int(r): i for i, r in enumerate(rows["_row"])}
        _worst_media(metrics, job.schema, prepared.arrays, positions, rows, b.dir)
        _provenance(
            metrics, job.cfg, job.model_art, job.params, {"table": record_inputs["manifest"]}
        )
        title = (
            f"{job.model_art.record.architecture.get('model', 'e2e')} model on {job.cfg.data.name}"
        )
        write_outputs(b.dir, metrics, y, predictions, classes, title, job.model_art)
        b.info["summary"] = _headline(metrics)
        b.info["schema"] = job.schema
        b.info["paths"] = {"data_root": relative_to(job.root, job.cfg.out)}
    return metrics


def _evaluate(
    cfg: EvaluateConfig,
    model_art: artifacts.Artifact,
    data: artifacts.Artifact,
    params: dict[str, Any],
    key: str,
    progress: Progress,
) -> dict[str, Any]:
    from mmcli.models import training
    from mmcli.stages.model_inputs import artifact_inputs
    from mmcli.stages.train import load_model, to_predictions

    cells = _manifest_cells(data)  # before any work: an edited manifest stops here
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
    inputs = artifact_inputs(model_art.record.architecture, data, table)
    module = load_model(model_art)

    def predict(tensors: list[Any]) -> np.ndarray:
        return to_predictions(model_art, training.predict(module, tensors, rows))

    predictions = predict(inputs)
    task = model_art.record.task
    classes = model_art.record.classes or []
    y = table["_target"].to_numpy()[rows]
    out = pd.DataFrame(
        {
            "_row": table["_row"].to_numpy()[rows],
            "_id": table["_id"].to_numpy()[rows],
            "split": table["_split"].to_numpy()[rows],
        }
    )
    y, metrics = score(task, y, predictions, classes)
    out = _prediction_table(out, y, predictions, classes, task)
    score_name = "macro_f1" if task == "classification" else "r2"
    metrics["contributions"] = _contributions(
        model_art, data, table, inputs, predict, y, classes, task, score_name, progress
    )
    metrics["worst"] = _worst(cells, out, predictions, y, task)
    metrics = {"task": task, "split": cfg.split, **metrics}
    record_inputs = {
        "model": {
            "path": relative_to(model_art.path, cfg.out),
            "fingerprint": model_art.fingerprint,
        },
        "upstream": input_ref(data, cfg.out),
    }
    with artifacts.Builder(
        cfg.out, stage="evaluate", params=params, inputs=record_inputs, key=key
    ) as b:
        out.to_parquet(b.dir / "predictions.parquet", index=False)
        prep = data.find("preprocess")
        prep_rows = prep.table("rows.parquet")
        positions = {int(r): i for i, r in enumerate(prep_rows["_row"])}
        arrays = {
            name: prep.array(file, mmap=True) for name, file in prep.record.table.arrays.items()
        }
        _worst_media(metrics, prep.record.table, arrays, positions, prep_rows, b.dir)
        _provenance(metrics, cfg, model_art, params, {"data": record_inputs["upstream"]})
        title = f"{model_art.record.architecture.get('model', 'e2e')} model"
        write_outputs(b.dir, metrics, y, predictions, classes, title, model_art)
        b.info["summary"] = _headline(metrics)
    return metrics


def score(
    task: str, y: np.ndarray, predictions: np.ndarray, classes: list[str]
) -> tuple[np.ndarray, dict[str, Any]]:
    """The targets as their task's type, and every metric of ``predictions`` (``(n, k)``
    class probabilities, or values): what metrics.json holds beside contributions and
    worst rows. Memory grows with rows + classes beside ``predictions`` itself."""
    from mmcli import metrics as m

    if task == "classification":
        y = y.astype(int)
        metrics = m.classification_metrics(y, predictions, classes)
        metrics["calibration"] = m.calibration(y, predictions)
        metrics["per_class_curves"] = m.per_class_curves(y, predictions, classes)
        _, note = m.curve_classes(y, len(classes))
        if note:
            metrics["per_class_curves_note"] = note
        return y, metrics
    y = y.astype(float)
    metrics = m.regression_metrics(y, predictions)
    metrics["residuals"] = m.residual_summary(y, predictions)
    return y, metrics


def _prediction_table(
    out: pd.DataFrame, y: np.ndarray, predictions: np.ndarray, classes: list[str], task: str
) -> pd.DataFrame:
    """``out`` (row, id, split) with each row's target and prediction (and class
    probabilities, all columns added at once: one by one, 10,000 of them took minutes)."""
    if task != "classification":
        return out.assign(target=y, prediction=predictions)
    out = out.assign(
        target=[classes[i] for i in y], prediction=[classes[i] for i in predictions.argmax(1)]
    )
    proba = pd.DataFrame(predictions, columns=[f"prob_{c}" for c in classes], index=out.index)
    return pd.concat([out, proba], axis=1)


def write_outputs(
    folder: Any,
    metrics: dict[str, Any],
    y: np.ndarray,
    predictions: np.ndarray,
    classes: list[str],
    title: str,
    model_art: artifacts.Artifact | None = None,
) -> None:
    """metrics.json, the figures, report.md and report.html into ``folder``, from the
    metrics ``score`` gives (plus ``task`` and ``split``, and optionally contributions,
    worst rows, provenance and gates). The model's training curve is copied in."""
    from mmcli import report

    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    (folder / "summary.json").write_text(json.dumps(headline_numbers(metrics), indent=2) + "\n")
    _plots(folder, metrics, y, predictions, classes)
    if model_art is not None and "curve.png" in model_art.record.outputs:
        (folder / "curve.png").write_bytes((model_art.path / "curve.png").read_bytes())
    (folder / "report.md").write_text(report.markdown(metrics, classes, title, folder))
    (folder / "report.html").write_text(report.html(metrics, classes, title, folder))


def headline_numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    """summary.json: a few numbers, flat, for ``dvc metrics show/diff`` and dashboards
    (metrics.json keeps every detail): rows scored and the task's gate metrics."""
    from mmcli.metrics import GATE_METRICS

    numbers: dict[str, Any] = {"rows": metrics["n"]}
    numbers.update({name: metrics.get(name) for name in GATE_METRICS[metrics["task"]]})
    if "calibration" in metrics:
        numbers["expected_calibration_error"] = metrics["calibration"]["ece"]
    return numbers


def _plots(
    folder: Any,
    metrics: dict[str, Any],
    y: np.ndarray,
    predictions: np.ndarray,
    classes: list[str],
) -> None:
    """The report's figures: confusion, calibration and curves, or residuals; contributions."""
    from mmcli import metrics as m
    from mmcli import plots

    if metrics["task"] == "classification":
        cm, names, of = metrics["confusion_matrix"], classes, None
        if cm is None:  # too many classes for the whole matrix: the most frequent part
            shown = m.most_frequent(np.bincount(y, minlength=len(classes)), plots.MAX_SHOWN)
            cm = m.confusion_counts(y, predictions.argmax(axis=1), shown)
            names, of = [classes[i] for i in shown], len(classes)
        plots.confusion_matrix_png(cm, names, folder / "confusion_matrix.png", of=of)
        plots.reliability_diagram_png(metrics["calibration"]["bins"], folder / "reliability.png")
        plots.class_curves_png(y, predictions, classes, folder / "roc_curves.png", kind="roc")
        plots.class_curves_png(y, predictions, classes, folder / "pr_curves.png", kind="pr")
    else:
        plots.predicted_vs_actual_png(y, predictions, folder / "predicted_vs_actual.png")
        plots.residuals_png(y, predictions, folder / "residuals.png")
    contributions = metrics.get("contributions", {})
    drops = {c: v["drop"] for c, v in contributions.get("columns", {}).items()}
    if drops:
        plots.contributions_png(drops, contributions["metric"], folder / "contributions.png")


def _worst_media(
    metrics: dict[str, Any],
    schema: TableSchema,
    arrays: dict[str, Any],
    positions: dict[int, int],
    rows: pd.DataFrame,
    folder: Path,
) -> None:
    """Thumbnails and clips of the worst rows' media inputs (``report_media``)."""
    from mmcli.report_media import write_worst_media

    columns = [(c.name, c.type) for c in schema.input_columns()]
    present = {
        name: rows[f"_present.{name}"].to_numpy(dtype=bool)
        for name, _ in columns
        if f"_present.{name}" in rows.columns
    }
    write_worst_media(
        metrics.get("worst", []), arrays, positions, present, columns, schema.sample_rate, folder
    )


def _provenance(
    metrics: dict[str, Any],
    cfg: EvaluateConfig,
    model_art: artifacts.Artifact,
    params: dict[str, Any],
    data: dict[str, Any],
) -> None:
    """What the report says it was made from: mmcli, the model and its parameters, the
    data (paths relative to the evaluation, as in its record), and the gates checked."""
    from mmcli import __version__
    from mmcli.metrics import check_gates, parse_gates

    gates = parse_gates(cfg.fail_under)
    results = [(f"{n}={v:g}", check_gates(metrics, [(n, v)])) for n, v in gates]
    model = {
        "path": relative_to(model_art.path, cfg.out),
        "fingerprint": model_art.fingerprint,
        "params": model_art.record.params,
    }
    if model_art.record.candidates:  # --model auto: what it chose from, on the val split
        model["candidates"] = model_art.record.candidates
    metrics["provenance"] = {
        "mmcli_version": __version__,
        "model": model,
        **data,
        "evaluate_params": {k: v for k, v in params.items() if k != "fail_under"},
    }
    metrics["gates"] = {
        "checked": [gate for gate, _ in results],
        "results": {gate: (failed[0] if failed else "passed") for gate, failed in results},
        "passed": not any(failed for _, failed in results),
    }


def _contributions(
    model_art: artifacts.Artifact,
    data: artifacts.Artifact,
    table: pd.DataFrame,
    inputs: list[Any],
    predict: Any,
    y: np.ndarray,
    classes: list[str],
    task: str,
    score_name: str,
    progress: Progress,
) -> dict[str, Any]:
    """Leave-one-column-out: the score with each input column masked as missing, and the drop."""
    from mmcli import metrics as m

    def score(predictions: np.ndarray) -> float:
        return m.headline_score(task, y, predictions, len(classes))

    full = score(predict(inputs))
    names = [c.name for c in data.record.table.input_columns()]
    columns = {}
    for i, name in enumerate(names):
        progress("modality contributions", i + 1, len(names))
        masked = score(predict(_masked_inputs(model_art, data, table, inputs, name)))
        columns[name] = {"score": round(masked, 6), "drop": round(full - masked, 6)}
    return {"metric": score_name, "full": round(full, 6), "columns": columns}


def _masked_inputs(
    model_art: artifacts.Artifact,
    data: artifacts.Artifact,
    table: pd.DataFrame,
    inputs: list[Any],
    column: str,
) -> list[Any]:
    """The model's inputs with ``column`` absent for every row, as missing data would be."""
    import torch

    from mmcli.stages.model_inputs import reads_matrix

    architecture = model_art.record.architecture
    if not reads_matrix(architecture):  # the network reads the mask: switch it off
        names = [c["name"] for c in architecture["columns"]]
        mask = inputs[-1].clone()
        mask[:, names.index(column)] = 0
        return [*inputs[:-1], mask]
    # A head reads the fused matrix: the matrix fuse would give with the column absent.
    return [torch.from_numpy(masked_matrix(inputs[0].numpy(), data, table, column))]


def masked_matrix(
    x: np.ndarray, fused: artifacts.Artifact, table: pd.DataFrame, column: str
) -> np.ndarray:
    """Fused matrix ``x`` (all rows of fuse artifact ``fused``) as fuse makes it with
    ``column`` absent from every row: its block zeroed (concat) or its part taken out of
    the sum (weighted-sum), and its presence flag cleared. One column's features are read,
    not every column's: leaving out each of 1,000 columns re-fused them all before
    (1,000 columns, 40 rows: 450 s)."""
    from mmcli.stages.fuse import MASK_BLOCK, column_part

    record = fused.record
    blocks = {b.name: b for b in record.blocks}
    masked = x.copy()
    if record.method == "weighted-sum":
        feats = fused.upstream()
        info = next(c for c in feats.record.columns if c.name == column)
        part = column_part(
            column,
            feats.array(info.features, mmap=True),
            table[f"_present.{column}"].to_numpy(dtype=bool),
            fused.tensors("fusion.safetensors"),
            record.method,
            record.weights,
        )
        total = next(b for b in record.blocks if b.name != MASK_BLOCK)
        masked[:, total.start : total.stop] -= part
    else:
        masked[:, blocks[column].start : blocks[column].stop] = 0.0
    mask = blocks[MASK_BLOCK]
    masked[:, mask.start + record.columns.index(column)] = 0.0
    return masked


def _worst(
    cells: list[dict[str, Any]],
    out: pd.DataFrame,
    predictions: np.ndarray,
    y: np.ndarray,
    task: str,
    n: int = 10,
) -> list[dict[str, Any]]:
    """The worst-predicted rows, with their input cells from the manifest."""
    if task == "classification":
        badness = 1.0 - predictions[np.arange(len(y)), y]  # 1 - probability of the true class
    else:
        badness = np.abs(predictions - y)
    order = np.argsort(-badness, kind="stable")[:n]
    worst = []
    for i in order:
        row = int(out["_row"].iloc[i])
        entry = {
            "row": row,
            "id": out["_id"].iloc[i],
            "target": _plain(out["target"].iloc[i]),
            "prediction": _plain(out["prediction"].iloc[i]),
            "error": round(float(badness[i]), 6),
        }
        if row < len(cells):
            entry["inputs"] = {k: _plain(v) for k, v in cells[row].items()}
        worst.append(entry)
    return worst


def _manifest_cells(data: artifacts.Artifact) -> list[dict[str, Any]]:
    """Every manifest row's input cells, from the manifest the chain was built from.

    The manifest is checked against the hash recorded by preprocess: rows of an edited
    manifest are not the rows that were scored.
    """
    from mmcli.io.tables import read_table

    prep = data.find("preprocess")
    recorded = prep.record.inputs.manifest
    manifest = prep.resolve(recorded.path)
    try:
        same = file_sha256(manifest) == recorded.sha256
    except OSError:
        same = False
    if not same:
        raise MissingInputError(
            f"{manifest}: the manifest is gone or changed since {prep.path} was built",
            hint=f"rerun the chain from `mmcli preprocess` (`mmcli status {data.path}` says "
            "what is stale)",
        )
    df = read_table(manifest)
    names = [c.name for c in prep.record.table.manifest_columns()]
    return df[names].to_dict(orient="records")


def _plain(value: Any) -> Any:
    """A JSON-safe scalar: numpy types unwrapped, NaN as None."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    names = (
        ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "majority_baseline_accuracy")
        if metrics["task"] == "classification"
        else ("mae", "rmse", "r2", "mean_baseline_mae")
    )
    headline = {"split": metrics["split"], "rows": metrics["n"]}
    if "table" in metrics:  # evaluate MODEL TABLE: which table, and the rows left out
        headline.update(table=metrics["table"], rows_rejected=metrics["rows_rejected"])
    return {**headline, "metrics": {n: metrics.get(n) for n in names}}
