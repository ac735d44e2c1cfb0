"""predict: raw rows in, predictions out, through every fitted step of the model's chain.

The new table goes through the same checks and conversions as ``preprocess`` (with the
parameters stored in the chain), the stored encoders, the stored fusion statistics and
the trained weights. Nothing is refitted. Rows that cannot be read appear in the output
with an ``error`` and no prediction; so do rows whose numbers overflow on the way (a value
that standardises past float32's range, features that normalise past it, a model output
that is not finite), each caught where it arises and named in the ``error`` cell.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts.records import TableSchema, TrainRecord
from mmcli.config import PredictConfig
from mmcli.errors import DataError, IOFailure, UsageError
from mmcli.io.tables import read_stdin_table, read_table, table_format, write_csv, write_table
from mmcli.stages import Progress, no_progress
from mmcli.stages.fuse import MASK_BLOCK


def run(
    cfg: PredictConfig, progress: Progress = no_progress, force: bool = False
) -> dict[str, Any]:
    """Predict every row of ``cfg.table``; writes ``cfg.out`` (CSV, Parquet or JSONL) atomically."""
    with artifacts.reading(cfg.wait):  # the model's chain stays as read until the end
        return _run(cfg, progress)


def _run(cfg: PredictConfig, progress: Progress) -> dict[str, Any]:
    from mmcli.stages.preprocess import prepare
    from mmcli.stages.train import load_model

    if cfg.out != STDIO:
        table_format(cfg.out)  # an unknown output format fails before any work
    if cfg.out.is_dir():
        raise UsageError(
            f"--out {cfg.out}: is a folder; predict writes one file",
            hint="name a file, such as predictions.csv",
        )
    model_art = artifacts.load(cfg.model, stages=("train",))
    prep = model_art.find("preprocess")
    schema: TableSchema = prep.record.table
    module = load_model(model_art)  # the weights' hash is checked before any row is read
    try:
        scratch_dir = tempfile.TemporaryDirectory(prefix="mmcli-predict-")
    except OSError as err:
        # No folder takes a file (all full): tempfile tries TMPDIR, /tmp, ... and the
        # current folder.
        raise _scratch_failure(os.environ.get("TMPDIR") or "the temporary folder", err) from err
    with scratch_dir as scratch:
        df = read_stdin_table(Path(scratch)) if cfg.table == STDIO else read_table(cfg.table)
        if len(df) == 0:
            raise DataError(f"{_name(cfg)}: no rows to predict")
        missing = [c.name for c in schema.manifest_columns() if c.name not in df.columns]
        if missing:
            raise DataError(
                f"{_name(cfg)}: missing input columns {missing}",
                hint="predict needs the columns the model was trained on",
            )
        root = data_root(cfg)
        try:
            prepared = prepare(
                df,
                schema,
                root,
                Path(scratch),
                on_error=cfg.on_error,
                with_target=False,
                progress=progress,
            )
        except OSError as err:  # decoders report their own files' errors per row
            raise _scratch_failure(scratch, err) from err
        return _predict(cfg, df, schema, prepared, model_art, module, progress)


#: ``-`` as TABLE reads stdin; as ``--out``, writes CSV to stdout (the summary goes to stderr).
STDIO = Path("-")


def _name(cfg: PredictConfig) -> str:
    """The table as messages name it."""
    return "stdin" if cfg.table == STDIO else str(cfg.table)


def data_root(cfg: PredictConfig) -> Path:
    """The folder relative paths resolve against: --data-root, else the table's folder
    (the current folder for a table on stdin)."""
    if cfg.data_root:
        return cfg.data_root.resolve()
    return Path.cwd() if cfg.table == STDIO else cfg.table.parent.resolve()


def _scratch_failure(folder: str, err: OSError) -> IOFailure:
    return IOFailure(
        f"predict: could not write its scratch files in {folder} ({err.strerror or err})",
        hint="free space there, or point TMPDIR at a folder with room",
    )


def _predict(
    cfg: PredictConfig,
    df: pd.DataFrame,
    schema: TableSchema,
    prepared: Any,
    model_art: artifacts.Artifact,
    module: Any,
    progress: Progress,
) -> dict[str, Any]:
    rows = prepared.table
    failures: dict[int, str] = {}  # position in ``rows`` -> why it has no prediction
    predictions = model_predictions(model_art, module, rows, prepared.arrays, failures, progress)
    if failures and cfg.on_error == "fail":
        position = min(failures)
        raise DataError(
            f"{_name(cfg)}: row {rows['_row'].iloc[position]}: {failures[position]}",
            hint="fix the row, or pass --on-error skip to predict the others",
        )

    out = _output_table(df, schema, rows, prepared.rejects, predictions, model_art.record, failures)
    _write(out, cfg.out)
    failed = int(out["error"].notna().sum())
    warned = int(out["warnings"].notna().sum())
    if failed == len(df):
        raise DataError(
            f"{_name(cfg)}: none of its {len(df)} rows could be predicted "
            f"(each row's reason is in {cfg.out}):\n  " + "\n  ".join(_first_reasons(out, "error")),
            hint=_all_failed_hint(df, model_art, cfg),
        )
    summary: dict[str, Any] = {
        "stage": "predict",
        "status": "written",
        "out": str(cfg.out),
        "rows": {"input": len(df), "predicted": len(df) - failed, "failed": failed},
    }
    if warned:
        summary["rows"]["warned"] = warned
    if failed:
        summary["first errors"] = _first_reasons(out, "error")
    if warned:
        summary["first warnings"] = _first_reasons(out, "warnings")
    return summary


def model_predictions(
    model_art: artifacts.Artifact,
    module: Any,
    rows: pd.DataFrame,
    arrays: dict[str, Any],
    failures: dict[int, str],
    progress: Progress,
) -> np.ndarray:
    """The model's predictions of ``rows`` (class probabilities or values); rows whose
    numbers overflow on the way are named in ``failures``."""

    from mmcli.models import training
    from mmcli.stages.model_inputs import e2e_inputs, matrix_inputs
    from mmcli.stages.train import to_predictions

    if len(rows) == 0:  # every row failed its checks: nothing reaches the model
        k = len(model_art.record.classes or [])
        return np.zeros((0, k) if model_art.record.task == "classification" else 0)
    architecture = model_art.record.architecture
    x = None
    if model_art.upstream().stage == "preprocess":
        inputs = e2e_inputs(rows, arrays, architecture["columns"], progress, failures)
    else:
        fused = model_art.find("fuse")
        x = _fused(fused, rows, arrays, failures, progress)
        inputs = matrix_inputs(architecture, x, rows)
    bad = np.zeros(len(rows), dtype=bool)
    predictions = to_predictions(model_art, training.predict(module, inputs), bad)
    for position in np.flatnonzero(bad):
        failures.setdefault(int(position), _output_failure(x, position, model_art))
    return predictions


def _first_reasons(out: pd.DataFrame, column: str, limit: int = 3) -> list[str]:
    """The first ``limit`` rows' reasons in ``column``, and how many more there are."""
    cells = out[out[column].notna()]
    shown = [f"row {r}: {why}" for r, why in zip(cells["row"], cells[column], strict=True)]
    more = (
        [f"... and {len(shown) - limit} more in the {column} column"] if len(shown) > limit else []
    )
    return shown[:limit] + more


def _all_failed_hint(df: pd.DataFrame, model_art: artifacts.Artifact, cfg: PredictConfig) -> str:
    """What to try when no row could be predicted: most often, paths relative to another
    folder than the table's (the current folder, or the training data's folder)."""
    root = data_root(cfg)
    prep = model_art.find("preprocess")
    schema: TableSchema = prep.record.table
    candidates = [Path.cwd(), prep.resolve(prep.record.paths.data_root)]
    media = [c.name for c in schema.manifest_columns() if c.type in ("image", "audio", "video")]
    for column in media:
        for cell in df[column].dropna().astype(str)[:20]:
            if os.path.isabs(cell) or (root / cell).exists():
                continue
            for folder in candidates:
                if (folder / cell).exists() and folder.resolve() != root:
                    return (
                        f"file paths resolve against {root}, but {cell} is in {folder}: "
                        f"pass --data-root {folder}"
                    )
    return f"file paths resolve against {root}; --data-root FOLDER changes that"


def _fused(
    fused: artifacts.Artifact,
    rows: pd.DataFrame,
    arrays: dict[str, Any],
    failures: dict[int, str],
    progress: Progress,
) -> np.ndarray:
    """The fused matrix of ``rows`` through the stored encoders and fusion statistics;
    rows whose features are not finite are zeroed and named in ``failures``."""
    from mmcli.stages.extract_features import encode, load_encoder, nonfinite_rows
    from mmcli.stages.fuse import apply_fusion

    feats = fused.find("extract-features")
    features, present = {}, {}
    for info in feats.record.columns:
        name = info.name
        encoder = load_encoder(feats, info)
        present[name] = rows[f"_present.{name}"].to_numpy(dtype=bool)
        features[name] = encode(encoder, info.type, name, rows, arrays, present[name], progress)
        for position in nonfinite_rows(features[name]):
            value = rows[name].iloc[position] if info.type == "number" else None
            failures.setdefault(int(position), f"{name}: {encoder.nonfinite_reason(value)}")
            features[name][position] = 0.0
    state = fused.tensors("fusion.safetensors")
    bad: dict[str, np.ndarray] = {}
    x, _ = apply_fusion(features, present, state, fused.record.method, fused.record.weights, bad)
    for name, flags in bad.items():
        for position in np.flatnonzero(flags):
            failures.setdefault(
                int(position),
                f"{name}: its features, normalised with the train-split statistics, pass "
                "float32's largest value",
            )
    return x


def _output_failure(x: np.ndarray | None, position: int, model_art: artifacts.Artifact) -> str:
    """Why a row's model output is not finite, naming the input column of its largest
    fused value when the model reads a fuse artifact."""
    why = "the model's output is not a finite number (its inputs are too large for the network)"
    if x is None:
        return why
    blocks = [b for b in model_art.find("fuse").record.blocks if b.name != MASK_BLOCK]
    if not blocks:
        return why
    size = [float(np.abs(x[position, b.start : b.stop]).max(initial=0.0)) for b in blocks]
    largest = blocks[int(np.argmax(size))]
    return f"{largest.name}: {why}; its normalised features reach {max(size):.3g}"


def _write(out: pd.DataFrame, path: Path) -> None:
    """Write the predictions atomically (temp file, rename); a full disk is IOFailure.
    ``-`` writes CSV to stdout."""
    if path == STDIO:
        try:
            write_csv(out, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped early (`| head`): what it asked for
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit stays quiet
            os.close(devnull)
        return
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_table(out, tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise IOFailure(
            f"{path}: could not write the predictions ({err.strerror or err})",
            hint="the previous file, if any, is untouched",
        ) from err
    finally:
        tmp.unlink(missing_ok=True)


def _output_table(
    df: pd.DataFrame,
    schema: TableSchema,
    rows: pd.DataFrame,
    rejects: list[dict[str, Any]],
    predictions: np.ndarray,
    record: TrainRecord,
    failures: dict[int, str],
) -> pd.DataFrame:
    """One output row per input row, in input order; a row with a failure has no
    prediction."""
    n = len(df)
    out = pd.DataFrame({"row": np.arange(n, dtype=np.int64)})
    if schema.id_column in df.columns:
        out["id"] = df[schema.id_column].astype(object).to_numpy()
    position = {r: i for i, r in enumerate(rows["_row"].tolist()) if i not in failures}
    index = [position.get(r) for r in range(n)]
    if record.task == "classification":
        classes = record.classes or []
        labels = predictions.argmax(1) if len(predictions) else np.zeros(0, int)
        out["prediction"] = [None if i is None else classes[labels[i]] for i in index]
        for k, name in enumerate(classes):
            out[f"prob_{name}"] = [np.nan if i is None else predictions[i, k] for i in index]
    else:
        out["prediction"] = [np.nan if i is None else predictions[i] for i in index]
    reasons: dict[int, str] = {int(rows["_row"].iloc[i]): reason for i, reason in failures.items()}
    for rej in rejects:
        if rej["action"] == "rejected":
            reasons.setdefault(rej["row"], f"{rej['column']}: {rej['reason']}")
    out["error"] = [reasons.get(r) for r in range(n)]
    kept: dict[int, list[str]] = {}  # --on-error keep: inputs read as missing
    for rej in rejects:
        if rej["action"] != "rejected" and rej["row"] not in reasons:
            kept.setdefault(rej["row"], []).append(
                f"{rej['column']}: {rej['reason']} (treated as missing)"
            )
    out["warnings"] = [("; ".join(kept[r]) if r in kept else None) for r in range(n)]
    return out
