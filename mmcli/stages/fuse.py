"""fuse: align the per-column features by row, normalise, and combine them into one matrix.

- ``concat``: each column's block standardised with train-split statistics, times its weight,
  side by side.
- ``weighted-sum``: each standardised block projected to a common ``width`` by a fixed, seeded
  random projection (scaled by 1/sqrt(dim) so every block has comparable variance), then
  summed with the given weights.

Either way a missing value is zero after standardisation (the train mean) and the matrix
ends with one 0/1 column per input saying whether it was present, so a model can tell
"average" from "absent". Output artifact::

    X.npy              (n, width) float32
    rows.parquet       _row, _id, _split, _target, _present.<column>
    fusion.safetensors train means/stds (and projections) per column, reused by predict
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts.record import Artifact, relative_to
from mmcli.config import FuseConfig
from mmcli.errors import UsageError
from mmcli.stages import Progress, no_progress

MASK_BLOCK = "_present"


def fit_fusion(
    features: dict[str, np.ndarray],
    present: dict[str, np.ndarray],
    train: np.ndarray,
    cfg: FuseConfig,
) -> dict[str, np.ndarray]:
    """Train-split statistics (and projections) for every column."""
    state = {}
    for i, (name, feats) in enumerate(features.items()):
        rows = train & present[name]
        fit = feats[rows] if rows.any() else feats[:0]
        mean = fit.mean(axis=0) if len(fit) else np.zeros(feats.shape[1], np.float32)
        std = fit.std(axis=0) if len(fit) else np.ones(feats.shape[1], np.float32)
        state[f"{name}.mean"] = mean.astype(np.float32)
        # Constant features (std ~ 0) are left unscaled rather than blown up.
        state[f"{name}.std"] = np.where(std < 1e-6, 1.0, std).astype(np.float32)
        if cfg.method == "weighted-sum":
            rng = np.random.default_rng([cfg.seed, i])
            proj = rng.standard_normal((feats.shape[1], cfg.width)) / np.sqrt(feats.shape[1])
            state[f"{name}.projection"] = proj.astype(np.float32)
    return state


def apply_fusion(
    features: dict[str, np.ndarray],
    present: dict[str, np.ndarray],
    state: dict[str, np.ndarray],
    method: str,
    weights: dict[str, float],
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The fused matrix and its blocks ([{name, start, stop}]); same code for train and predict."""
    parts, blocks, start = [], [], 0
    total = None
    for name, feats in features.items():
        z = (feats - state[f"{name}.mean"]) / state[f"{name}.std"]
        z[~present[name]] = 0.0
        z *= np.float32(weights.get(name, 1.0))
        if method == "weighted-sum":
            projected = z @ state[f"{name}.projection"]
            total = projected if total is None else total + projected
            continue
        parts.append(z)
        blocks.append({"name": name, "start": start, "stop": start + z.shape[1]})
        start += z.shape[1]
    if method == "weighted-sum":
        assert total is not None
        parts.append(total)
        blocks.append({"name": "+".join(features), "start": 0, "stop": total.shape[1]})
        start = total.shape[1]
    mask = np.stack([present[name] for name in features], axis=1).astype(np.float32)
    parts.append(mask)
    blocks.append({"name": MASK_BLOCK, "start": start, "stop": start + mask.shape[1]})
    return np.concatenate(parts, axis=1).astype(np.float32), blocks


def load_features(feats: Artifact, table: pd.DataFrame) -> tuple[dict, dict]:
    features, present = {}, {}
    for info in feats.record["columns"]:
        features[info["name"]] = feats.array(info["features"])
        present[info["name"]] = table[f"_present.{info['name']}"].to_numpy(dtype=bool)
    return features, present


@artifacts.exclusive
def run(
    cfg: FuseConfig,
    progress: Progress = no_progress,
    force: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Fuse an extract-features artifact into one normalised matrix."""
    feats = artifacts.load(cfg.feats, stages=("extract-features",))
    names = [c["name"] for c in feats.record["columns"]]
    unknown = sorted(set(cfg.weights) - set(names))
    if unknown:
        raise UsageError(f"--weights names unknown columns {unknown}", hint=f"columns: {names}")
    key = artifacts.cache_key("fuse", cfg.identity(), {"upstream": feats.fingerprint})
    summary: dict[str, Any] = {"stage": "fuse", "out": str(cfg.out)}
    if not force and (record := artifacts.up_to_date(cfg.out, key)) is not None:
        return {**summary, "status": "up-to-date", **record["summary"]}
    if dry_run:
        return {
            **summary,
            "status": "would-build",
            "why": artifacts.rebuild_reason(cfg.out, cfg.identity()),
        }

    table = feats.table("rows.parquet")
    features, present = load_features(feats, table)
    train = (table["_split"] == "train").to_numpy()
    progress("fusing", 0, None)
    state = fit_fusion(features, present, train, cfg)
    weights = {name: float(cfg.weights.get(name, 1.0)) for name in names}
    x, blocks = apply_fusion(features, present, state, cfg.method, weights)
    for block in blocks:
        info = next((c for c in feats.record["columns"] if c["name"] == block["name"]), None)
        block["type"] = (
            info["type"] if info else ("mask" if block["name"] == MASK_BLOCK else "fused")
        )
    inputs = {
        "upstream": {
            "stage": "extract-features",
            "path": relative_to(feats.path, cfg.out),
            "fingerprint": feats.fingerprint,
        }
    }
    summary.update(
        {
            "status": "built",
            "rows": int(x.shape[0]),
            "width": int(x.shape[1]),
            "method": cfg.method,
            "blocks": {b["name"]: b["stop"] - b["start"] for b in blocks},
        }
    )
    with artifacts.Builder(
        cfg.out,
        stage="fuse",
        params=cfg.identity(),
        inputs=inputs,
        key=key,
        seed=cfg.seed,
    ) as build:
        from safetensors.numpy import save_file

        np.save(build.dir / "X.npy", x)
        table.to_parquet(build.dir / "rows.parquet", index=False)
        save_file(state, str(build.dir / "fusion.safetensors"))
        build.info.update(
            {
                "blocks": blocks,
                "weights": weights,
                "columns": names,
                "schema": feats.record["schema"],
                "summary": {k: summary[k] for k in ("rows", "width", "method", "blocks")},
            }
        )
    return summary
