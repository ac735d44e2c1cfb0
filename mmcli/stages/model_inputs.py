"""Tensors a model reads, built the same way for train, evaluate and predict.

- a head on a fuse artifact reads ``[X]``;
- a multimodal network on a fuse artifact reads each column's block of ``X`` and the mask;
- an end-to-end network on a preprocess artifact reads each column's preprocessed tensor
  (images and video frames uint8, audio as log-mel, text as token ids, numbers
  standardised, categories as indices) and the mask. A video's soundtrack is an audio
  column of its own.

What is fitted for the end-to-end inputs (vocabularies, categories, number statistics)
comes from the train split only and is stored in the model's architecture.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mmcli.artifacts.records import FuseRecord, TableSchema
from mmcli.errors import DataError, MissingInputError
from mmcli.stages.fuse import MASK_BLOCK

AUDIO_CHUNK = 256
#: Rows checked at a time for inf and NaN (bounded extra memory).
CHECK_ROWS = 4096


def mask_tensor(table: pd.DataFrame, names: list[str]) -> Tensor:
    return torch.from_numpy(
        np.stack([table[f"_present.{n}"].to_numpy(dtype=bool) for n in names], axis=1).astype(
            np.float32
        )
    )


def block_specs(fused_record: FuseRecord) -> list[dict[str, Any]]:
    """One dense tower per input column's block of a concat fuse artifact."""
    if fused_record.method != "concat":
        raise DataError(
            "--fusion on a fuse artifact needs per-column blocks: fuse it with --method concat"
        )
    return [
        {
            "name": b.name,
            "type": b.type,
            "tower": "dense",
            "dim": b.stop - b.start,
            "start": b.start,
            "stop": b.stop,
        }
        for b in fused_record.blocks
        if b.name != MASK_BLOCK
    ]


def fused_matrix(data: Any) -> np.ndarray:
    """A fuse artifact's X, in memory, its header checked against the record (rows and
    width) and every value checked finite: fuse never writes inf or NaN, so one is a
    damaged or forged file, never trained or scored on."""
    x = data.array("X.npy")
    for start in range(0, len(x), CHECK_ROWS):
        finite = np.isfinite(x[start : start + CHECK_ROWS]).all(axis=1)
        if not finite.all():
            raise MissingInputError(
                f"{data.path / 'X.npy'}: damaged artifact: its row "
                f"{start + int(np.flatnonzero(~finite)[0])} holds NaN or inf "
                "(fuse never writes one)",
                hint="rebuild the fuse artifact with --force",
            )
    return x


def block_inputs(x: np.ndarray, table: pd.DataFrame, specs: list[dict[str, Any]]) -> list[Tensor]:
    x_t = torch.from_numpy(np.ascontiguousarray(x))
    return [x_t[:, s["start"] : s["stop"]] for s in specs] + [
        mask_tensor(table, [s["name"] for s in specs])
    ]


def fit_e2e_specs(
    schema: TableSchema, table: pd.DataFrame, train: np.ndarray, options: dict[str, Any]
) -> list[dict[str, Any]]:
    """Tower specs for every input column, fitted on the train split."""
    from mmcli.models.vocab import build_vocab

    specs = []
    for col in schema.input_columns():
        name, kind = col.name, col.type
        present = table[f"_present.{name}"].to_numpy(dtype=bool)
        rows = train & present
        spec: dict[str, Any] = {"name": name, "type": kind}
        if kind == "image":
            spec.update(tower="image-cnn", channels=options["conv_channels"])
        elif kind == "video":
            spec.update(
                tower="video-cnn",
                channels=options["conv_channels"],
                temporal=options["video_temporal"],
            )
        elif kind == "audio":
            spec.update(
                tower="audio-cnn",
                sample_rate=schema.sample_rate,
                n_mels=40,
                channels=options["conv_channels"],
            )
        elif kind == "text":
            texts = [str(t) for t in table[name].to_numpy()[rows]]
            spec.update(
                tower="text-rnn",
                vocab=build_vocab(texts),
                max_len=options["text_max_len"],
                embed_dim=options["embed_dim"],
                hidden=options["rnn_hidden"],
                rnn=options["rnn"],
            )
        elif kind == "number":
            spec.update(tower="dense", dim=1, **_number_scale(name, table, rows))
        else:
            spec.update(
                tower="category", categories=sorted({str(v) for v in table[name].to_numpy()[rows]})
            )
        specs.append(spec)
    return specs


def _number_scale(name: str, table: pd.DataFrame, rows: np.ndarray) -> dict[str, float]:
    """Train-split mean and std of a number column (as the ``standard`` encoder fits them);
    values whose statistics overflow are a DataError naming the row."""
    from mmcli.encoders.base import Overflow
    from mmcli.encoders.tabular import NumberStandard

    values = table[name].to_numpy(dtype=np.float64)[rows]
    if not len(values):
        return {"mean": 0.0, "std": 1.0}
    scaler = NumberStandard()
    try:
        scaler.fit(values)
    except Overflow as exc:
        row = table["_row"].to_numpy()[np.flatnonzero(rows)[exc.index]]
        raise DataError(
            f"column {name!r}, row {row}: {exc.message}",
            hint="fix or remove the value in the manifest, then rerun",
        ) from None
    return {"mean": scaler.mean, "std": scaler.std}


def _scaler(spec: dict[str, Any]) -> Any:
    from mmcli.encoders.tabular import NumberStandard

    return NumberStandard.from_state({"options": {}, "mean": spec["mean"], "std": spec["std"]}, {})


def e2e_inputs(
    table: pd.DataFrame,
    arrays: dict[str, Any],
    specs: list[dict[str, Any]],
    progress: Any = None,
    bad: dict[int, str] | None = None,
) -> list[Tensor]:
    """One tensor per column (rows of ``table``) plus the presence mask.

    A number that standardises past float32's range, or an audio row that is not finite,
    is never fed to the network: without ``bad`` it is a DataError (data the model is fit
    or scored on); with it, ``bad[position]`` gets the reason and the row's input is
    zeroed (predict's ``error`` cell).
    """
    from mmcli.models.towers import LogMel
    from mmcli.models.vocab import encode

    out: list[Tensor] = []
    for spec in specs:
        name, tower = spec["name"], spec["tower"]
        if tower in ("image-cnn", "video-cnn"):
            out.append(torch.from_numpy(np.array(arrays[name])))  # a writable copy
        elif tower == "audio-cnn":
            # Log-mel once per run, not once per epoch: it has nothing to learn.
            frontend = LogMel(spec["sample_rate"], spec["n_mels"])
            wave = arrays[name]
            chunks = []
            for s in range(0, len(wave), AUDIO_CHUNK):
                chunk = np.array(wave[s : s + AUDIO_CHUNK])
                _refuse(chunk.reshape(len(chunk), -1), s, name, table, bad, None)
                chunks.append(frontend(torch.from_numpy(chunk)))
                if progress:
                    progress(f"log-mel {name}", min(s + AUDIO_CHUNK, len(wave)), len(wave))
            out.append(torch.cat(chunks) if chunks else torch.zeros(0))
        elif tower == "text-rnn":
            texts = [None if v is None else str(v) for v in table[name].to_numpy()]
            out.append(torch.from_numpy(encode(texts, spec["vocab"], spec["max_len"])))
        elif tower == "dense":
            values = table[name].to_numpy(dtype=np.float64)
            scaler = _scaler(spec)
            z = scaler.transform(np.nan_to_num(values, nan=spec["mean"]))
            why = functools.partial(_number_reason, scaler, values)
            _refuse(z, 0, name, table, bad, why)
            out.append(torch.from_numpy(z))
        else:
            index = {c: i + 1 for i, c in enumerate(spec["categories"])}  # 0: unknown
            out.append(
                torch.tensor(
                    [index.get(str(v), 0) for v in table[name].to_numpy()], dtype=torch.long
                )
            )
    return out + [mask_tensor(table, [s["name"] for s in specs])]


def _number_reason(scaler: Any, values: np.ndarray, i: int) -> str:
    return str(scaler.nonfinite_reason(values[i]))


def _refuse(
    block: np.ndarray,
    start: int,
    name: str,
    table: pd.DataFrame,
    bad: dict[int, str] | None,
    reason: Any,
) -> None:
    """Rows of ``block`` (rows ``start``.. of ``table``) that are not finite: zeroed and
    listed in ``bad``, or, without it, a DataError (a damaged preprocess array when no
    ``reason`` explains them)."""
    finite = np.isfinite(block).all(axis=1)
    if finite.all():
        return
    for at in np.flatnonzero(~finite):
        why = reason(start + at) if reason else "its preprocessed values are not finite numbers"
        if bad is None:
            message = f"column {name!r}, row {table['_row'].iloc[start + at]}: {why}"
            if reason is None:
                raise MissingInputError(
                    f"damaged artifact: {message}", hint="rebuild it with --force"
                )
            raise DataError(message, hint="fix or remove the value in the manifest, then rerun")
        bad.setdefault(int(start + at), f"{name}: {why}")
        block[at] = 0


def artifact_inputs(architecture: dict[str, Any], data: Any, table: pd.DataFrame) -> list[Tensor]:
    """The inputs of a trained model for every row of its own data artifact."""
    if data.stage == "preprocess":
        from mmcli.stages.extract_features import load_prep_arrays

        return e2e_inputs(table, load_prep_arrays(data), architecture["columns"])
    return matrix_inputs(architecture, fused_matrix(data), table)


def reads_matrix(architecture: dict[str, Any]) -> bool:
    """Whether a model on a fuse artifact reads the whole matrix (a head, an ensemble) or
    each column's block and the presence mask (late and learned fusion)."""
    return architecture["family"] in ("head", "ensemble")


def matrix_inputs(architecture: dict[str, Any], x: np.ndarray, table: pd.DataFrame) -> list[Tensor]:
    """The inputs of a model on a fuse artifact, from its fused matrix ``x``."""
    if reads_matrix(architecture):
        return [torch.from_numpy(np.ascontiguousarray(x))]
    return block_inputs(x, table, architecture["columns"])
