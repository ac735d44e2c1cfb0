"""predict: raw rows in, predictions out, through every fitted step of the model's chain.

The new table goes through the same checks and conversions as ``preprocess`` (with the
parameters stored in the chain), the stored encoders, the stored fusion statistics and
the trained weights. Nothing is refitted. Rows that cannot be read appear in the output
with an ``error`` and no prediction.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts.records import TableSchema, TrainRecord
from mmcli.config import PredictConfig
from mmcli.errors import DataError
from mmcli.io.tables import read_table, table_format, write_table
from mmcli.stages import Progress, no_progress


def run(
    cfg: PredictConfig, progress: Progress = no_progress, force: bool = False
) -> dict[str, Any]:
    """Predict every row of ``cfg.table``; writes ``cfg.out`` (CSV, Parquet or JSONL) atomically."""
    with artifacts.reading(cfg.wait):  # the model's chain stays as read until the end
        return _run(cfg, progress)


def _run(cfg: PredictConfig, progress: Progress) -> dict[str, Any]:
    from mmcli.stages.preprocess import prepare
    from mmcli.stages.train import load_model

    table_format(cfg.out)  # an unknown output format fails before any work
    model_art = artifacts.load(cfg.model, stages=("train",))
    prep = model_art.find("preprocess")
    schema: TableSchema = prep.record.table
    module = load_model(model_art)  # the weights' hash is checked before any row is read
    df = read_table(cfg.table)
    if len(df) == 0:
        raise DataError(f"{cfg.table}: no rows to predict")
    missing = [c.name for c in schema.manifest_columns() if c.name not in df.columns]
    if missing:
        raise DataError(
            f"{cfg.table}: missing input columns {missing}",
            hint="predict needs the columns the model was trained on",
        )
    root = (cfg.data_root or cfg.table.parent).resolve()
    with tempfile.TemporaryDirectory(prefix="mmcli-predict-") as scratch:
        prepared = prepare(
            df,
            schema,
            root,
            Path(scratch),
            on_error=cfg.on_error,
            with_target=False,
            progress=progress,
        )
        return _predict(cfg, df, schema, prepared, model_art, module, progress)


def _predict(
    cfg: PredictConfig,
    df: pd.DataFrame,
    schema: TableSchema,
    prepared: Any,
    model_art: artifacts.Artifact,
    module: Any,
    progress: Progress,
) -> dict[str, Any]:
    import torch

    from mmcli.models import training
    from mmcli.stages.extract_features import encode, load_encoder
    from mmcli.stages.fuse import apply_fusion
    from mmcli.stages.model_inputs import block_inputs, e2e_inputs
    from mmcli.stages.train import to_predictions

    architecture = model_art.record.architecture
    rows = prepared.table
    if model_art.upstream().stage == "preprocess":
        inputs = e2e_inputs(rows, prepared.arrays, architecture["columns"], progress)
    else:
        fused = model_art.find("fuse")
        feats = fused.find("extract-features")
        features, present = {}, {}
        for info in feats.record.columns:
            name = info.name
            present[name] = rows[f"_present.{name}"].to_numpy(dtype=bool)
            features[name] = encode(
                load_encoder(feats, info),
                info.type,
                name,
                rows,
                prepared.arrays,
                present[name],
                progress,
            )
        state = fused.tensors("fusion.safetensors")
        x, _ = apply_fusion(features, present, state, fused.record.method, fused.record.weights)
        inputs = (
            [torch.from_numpy(x)]
            if architecture["family"] == "head"
            else block_inputs(x, rows, architecture["columns"])
        )
    predictions = to_predictions(model_art, training.predict(module, inputs))

    out = _output_table(df, schema, rows, prepared.rejects, predictions, model_art.record)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = cfg.out.with_name(f".{cfg.out.name}.tmp-{os.getpid()}{cfg.out.suffix}")
    try:
        write_table(out, tmp)
        os.replace(tmp, cfg.out)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "stage": "predict",
        "status": "written",
        "out": str(cfg.out),
        "rows": {"input": len(df), "predicted": len(rows), "failed": len(df) - len(rows)},
    }


def _output_table(
    df: pd.DataFrame,
    schema: TableSchema,
    rows: pd.DataFrame,
    rejects: list[dict[str, Any]],
    predictions: np.ndarray,
    record: TrainRecord,
) -> pd.DataFrame:
    """One output row per input row, in input order."""
    n = len(df)
    out = pd.DataFrame({"row": np.arange(n, dtype=np.int64)})
    if schema.id_column in df.columns:
        out["id"] = df[schema.id_column].astype(object).to_numpy()
    position = dict(zip(rows["_row"].tolist(), range(len(rows)), strict=True))
    index = [position.get(r) for r in range(n)]
    if record.task == "classification":
        classes = record.classes or []
        labels = predictions.argmax(1) if len(predictions) else np.zeros(0, int)
        out["prediction"] = [None if i is None else classes[labels[i]] for i in index]
        for k, name in enumerate(classes):
            out[f"prob_{name}"] = [np.nan if i is None else predictions[i, k] for i in index]
    else:
        out["prediction"] = [np.nan if i is None else predictions[i] for i in index]
    reasons: dict[int, str] = {}
    for rej in rejects:
        if rej["action"] == "rejected":
            reasons.setdefault(rej["row"], f"{rej['column']}: {rej['reason']}")
    out["error"] = [reasons.get(r) for r in range(n)]
    return out
