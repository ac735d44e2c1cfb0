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

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mmcli.artifacts.records import FuseRecord, TableSchema
from mmcli.errors import DataError
from mmcli.stages.fuse import MASK_BLOCK

AUDIO_CHUNK = 256


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
            values = table[name].to_numpy(dtype=np.float64)[rows]
            spec.update(
                tower="dense",
                dim=1,
                mean=float(values.mean()) if len(values) else 0.0,
                std=float(values.std()) if len(values) and values.std() > 0 else 1.0,
            )
        else:
            spec.update(
                tower="category", categories=sorted({str(v) for v in table[name].to_numpy()[rows]})
            )
        specs.append(spec)
    return specs


def e2e_inputs(
    table: pd.DataFrame, arrays: dict[str, Any], specs: list[dict[str, Any]], progress: Any = None
) -> list[Tensor]:
    """One tensor per column (rows of ``table``) plus the presence mask."""
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
                chunks.append(frontend(torch.from_numpy(np.array(wave[s : s + AUDIO_CHUNK]))))
                if progress:
                    progress(f"log-mel {name}", min(s + AUDIO_CHUNK, len(wave)), len(wave))
            out.append(torch.cat(chunks) if chunks else torch.zeros(0))
        elif tower == "text-rnn":
            texts = [None if v is None else str(v) for v in table[name].to_numpy()]
            out.append(torch.from_numpy(encode(texts, spec["vocab"], spec["max_len"])))
        elif tower == "dense":
            values = table[name].to_numpy(dtype=np.float64)
            z = np.nan_to_num((values - spec["mean"]) / spec["std"], nan=0.0)
            out.append(torch.from_numpy(z.astype(np.float32))[:, None])
        else:
            index = {c: i + 1 for i, c in enumerate(spec["categories"])}  # 0: unknown
            out.append(
                torch.tensor(
                    [index.get(str(v), 0) for v in table[name].to_numpy()], dtype=torch.long
                )
            )
    return out + [mask_tensor(table, [s["name"] for s in specs])]


def artifact_inputs(architecture: dict[str, Any], data: Any, table: pd.DataFrame) -> list[Tensor]:
    """The inputs of a trained model for every row of its own data artifact."""
    if data.stage == "preprocess":
        from mmcli.stages.extract_features import load_prep_arrays

        return e2e_inputs(table, load_prep_arrays(data), architecture["columns"])
    x = data.array("X.npy")
    if architecture["family"] == "head":
        return [torch.from_numpy(x)]
    return block_inputs(x, table, architecture["columns"])
