"""extract-features: one encoder per input column -> a float32 vector per row.

Output artifact::

    rows.parquet              _row, _id, _split, _target and _present.<column> of every row
    features/<col>.npy        (n, dim) float32, zeros where the value is missing; a video
                              column's frames through an image encoder, pooled over time
    encoders/<col>.json       encoder name, options and JSON state (vocabularies, ...)
    encoders/<col>.safetensors  fitted arrays (idf, means, ...) when the encoder has any

Anything fitted is fitted on the train split only.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts, encoders
from mmcli.artifacts.record import Artifact, relative_to
from mmcli.config import ExtractConfig
from mmcli.errors import DataError
from mmcli.stages import Progress, no_progress
from mmcli.stages.schema import column_slugs, input_columns

CHUNK = 512
ROW_COLUMNS = ("_row", "_id", "_split", "_target")


def column_values(
    kind: str, name: str, table: pd.DataFrame, arrays: dict[str, Any], idx: np.ndarray
) -> Any:
    """The values of rows ``idx`` of one column, in the form its encoder takes."""
    if kind in ("image", "audio", "video"):
        return np.asarray(arrays[name][idx])
    if kind == "number":
        return table[name].to_numpy(dtype=np.float64)[idx]
    return [str(v) for v in table[name].to_numpy()[idx]]


def encode(
    encoder: Any,
    kind: str,
    name: str,
    table: pd.DataFrame,
    arrays: dict[str, Any],
    present: np.ndarray,
    progress: Progress = no_progress,
) -> np.ndarray:
    """Transform every present row in chunks (bounded memory); missing rows stay zero."""
    out = np.zeros((len(table), encoder.dim), dtype=np.float32)
    idx = np.flatnonzero(present)
    # A video row holds K frames: fewer rows per chunk keep the chunk's frames near CHUNK.
    step = max(1, CHUNK // arrays[name].shape[1]) if kind == "video" else CHUNK
    for start in range(0, len(idx), step):
        chunk = idx[start : start + step]
        out[chunk] = encoder.transform(column_values(kind, name, table, arrays, chunk))
        progress(f"encoding {name}", min(start + step, len(idx)), len(idx))
    return out


def create_encoder(kind: str, name: str, schema: dict[str, Any], cfg: ExtractConfig) -> Any:
    """A new encoder for one column; a video column's frames go through image encoder ``name``."""
    if kind == "video":
        from mmcli.encoders.video import VideoFrames

        return VideoFrames(image=name, pool=cfg.video_pool)
    options = {"sample_rate": schema["sample_rate"]} if kind == "audio" else {}
    return encoders.create(kind, name, **options)


def load_encoder(feats: Artifact, info: dict[str, Any]) -> Any:
    """Rebuild a fitted encoder from its stored state (JSON + safetensors, no pickle)."""
    meta = json.loads(feats.file(info["state"]).read_text(encoding="utf-8"))
    arrays = {}
    if info.get("arrays"):
        arrays = feats.tensors(info["arrays"])
    if info["type"] == "video":
        from mmcli.encoders.video import VideoFrames

        return VideoFrames.from_state(meta, arrays)
    return encoders.encoder_class(info["type"], info["encoder"]).from_state(meta, arrays)


def load_prep_arrays(prep: Artifact) -> dict[str, np.ndarray]:
    files = prep.record["schema"]["arrays"]
    return {name: prep.array(f, mmap=True) for name, f in files.items()}


@artifacts.exclusive
def run(
    cfg: ExtractConfig,
    progress: Progress = no_progress,
    force: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Fit encoders on the train split and encode every row of a preprocess artifact."""
    prep = artifacts.load(cfg.prep, stages=("preprocess",))
    schema = prep.record["schema"]
    columns = input_columns(schema)
    chosen = {c["name"]: getattr(cfg, c["type"]) for c in columns}
    for col in columns:  # unknown names fail before any work; video frames use image encoders
        encoders.spec("image" if col["type"] == "video" else col["type"], chosen[col["name"]])
    key = artifacts.cache_key("extract-features", cfg.identity(), {"upstream": prep.fingerprint})
    summary: dict[str, Any] = {"stage": "extract-features", "out": str(cfg.out)}
    if not force and (record := artifacts.up_to_date(cfg.out, key)) is not None:
        return {**summary, "status": "up-to-date", **record["summary"]}
    if dry_run:
        return {
            **summary,
            "status": "would-build",
            "why": artifacts.rebuild_reason(cfg.out, cfg.identity()),
        }

    table = prep.table("rows.parquet")
    arrays = load_prep_arrays(prep)
    train = (table["_split"] == "train").to_numpy()
    inputs = {
        "upstream": {
            "stage": "preprocess",
            "path": relative_to(prep.path, cfg.out),
            "fingerprint": prep.fingerprint,
        }
    }
    infos = []
    slugs = column_slugs(schema)
    with artifacts.Builder(
        cfg.out,
        stage="extract-features",
        params=cfg.identity(),
        inputs=inputs,
        key=key,
    ) as build:
        (build.dir / "features").mkdir()
        (build.dir / "encoders").mkdir()
        for col in columns:
            name, kind = col["name"], col["type"]
            present = table[f"_present.{name}"].to_numpy()
            encoder = create_encoder(kind, chosen[name], schema, cfg)
            if encoder.fitted:
                fit_idx = np.flatnonzero(train & present)
                if len(fit_idx) == 0:
                    raise DataError(
                        f"column {name!r}: no train row has a value to fit "
                        f"the {chosen[name]} encoder on"
                    )
                progress(f"fitting {name}", 0, None)
                encoder.fit(column_values(kind, name, table, arrays, fit_idx))
            features = encode(encoder, kind, name, table, arrays, present, progress)
            slug = slugs[name]
            info = {
                "name": name,
                "type": kind,
                "encoder": chosen[name],
                "dim": encoder.dim,
                "features": f"features/{slug}.npy",
                "state": f"encoders/{slug}.json",
            }
            np.save(build.dir / info["features"], features)
            meta, state_arrays = encoder.state()
            (build.dir / info["state"]).write_text(
                json.dumps(meta, sort_keys=True, indent=1) + "\n", encoding="utf-8"
            )
            if state_arrays:
                from safetensors.numpy import save_file

                info["arrays"] = f"encoders/{slug}.safetensors"
                save_file(
                    {k: np.ascontiguousarray(v) for k, v in state_arrays.items()},
                    str(build.dir / info["arrays"]),
                )
            infos.append(info)
        keep = [c for c in table.columns if c in ROW_COLUMNS or c.startswith("_present.")]
        table[keep].to_parquet(build.dir / "rows.parquet", index=False)
        summary.update(
            {
                "status": "built",
                "rows": len(table),
                "encoders": {i["name"]: f"{i['encoder']} ({i['dim']})" for i in infos},
            }
        )
        build.info.update(
            {
                "columns": infos,
                "schema": schema,
                "summary": {k: summary[k] for k in ("rows", "encoders")},
            }
        )
    return summary
