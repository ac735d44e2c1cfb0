"""fuse: align the per-column features by row, normalise, and combine them into one matrix.

- ``concat``: each column's block normalised with train-split statistics, times its weight,
  side by side.

Normalisation (``--scale``): ``feature`` standardises every feature alone. ``block`` (the
default) makes each column's block weigh alike whatever its width: a dense block's
features are standardised and then divided by sqrt(width), so the block has unit
expected squared norm; a sparse text block (tfidf, hashing) is centred and divided by its
rows' RMS norm as a whole, which keeps its terms' relative weights (standardising each
term blows rare words up). Before, a 2,048-column TF-IDF block outweighed a 90-column
MFCC block twenty times over, and a logistic head did better with the text left out.
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

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts import arrays as store
from mmcli.artifacts.record import Artifact, input_ref
from mmcli.config import FuseConfig
from mmcli.errors import DataError, MissingInputError, UsageError
from mmcli.stages import Progress, no_progress, staleness

MASK_BLOCK = "_present"


#: Rows per block when reading and writing (bounded memory whatever the row count).
CHUNK = 1024


def read_features(source: Path, rows: np.ndarray | slice) -> np.ndarray:
    """Rows of a feature file, checked finite as they are read: extract-features never
    writes inf or NaN, so one is a damaged (or forged) file, never used."""
    block = store.read_rows(source, rows)
    finite = np.isfinite(block).all(axis=1)
    if not finite.all():
        at = int(np.flatnonzero(~finite)[0])
        row = np.arange(store.row_count(source))[rows][at]
        raise MissingInputError(
            f"{source}: damaged artifact: its row {row} holds NaN or inf "
            "(extract-features never writes one)",
            hint="rebuild the extract-features artifact with --force",
        )
    return block


def _sums(source: Any, rows: np.ndarray, center: np.ndarray | None) -> np.ndarray:
    """Sum over ``rows`` of x (or of (x - center)^2), in float64, a block at a time."""
    total = None
    for start in range(0, len(rows), CHUNK):
        block = read_features(source, rows[start : start + CHUNK]).astype(np.float64)
        part = (block if center is None else (block - center) ** 2).sum(axis=0)
        total = part if total is None else total + part
    return total


#: Encoders whose features are sparse term weights: scaled as a whole block, never per term.
SPARSE_ENCODERS = ("tfidf", "hashing")


def fit_fusion(
    features: dict[str, Path],
    present: dict[str, np.ndarray],
    train: np.ndarray,
    cfg: FuseConfig,
    sparse: frozenset[str] = frozenset(),
) -> dict[str, np.ndarray]:
    """Train-split statistics (and projections) for every column, read a block at a time.

    ``{name}.std`` is what the column's features are divided by once centred: each
    feature's standard deviation (``--scale feature``), or with ``--scale block`` that
    times sqrt(number of varying features), or for a column in ``sparse`` the block's RMS
    norm, one number for all its features.
    """
    state = {}
    for i, (name, source) in enumerate(features.items()):
        dim = store.row_shape(source)[0]
        rows = np.flatnonzero(train & present[name])
        if len(rows):
            # Two passes (mean, then squared deviations) in float64: exact enough however
            # large the mean, and independent of the block size.
            mean = _sums(source, rows, None) / len(rows)
            var = _sums(source, rows, mean) / len(rows)
        else:
            mean, var = np.zeros(dim), np.ones(dim)
        with np.errstate(over="ignore", invalid="ignore"):
            std = np.sqrt(var)
            varying = std >= 1e-6
            if cfg.scale == "block" and name in sparse:
                norm = np.sqrt(var.sum())  # RMS norm of the centred rows
                std = np.full(dim, norm if norm >= 1e-6 else 1.0)
            else:
                # Constant features (std ~ 0) are left unscaled rather than blown up.
                std = np.where(varying, std, 1.0)
                if cfg.scale == "block":
                    std = std * np.sqrt(max(int(varying.sum()), 1))
            state[f"{name}.mean"] = mean.astype(np.float32)
            state[f"{name}.std"] = std.astype(np.float32)
        for part in ("mean", "std"):
            if not np.isfinite(state[f"{name}.{part}"]).all():
                raise DataError(
                    f"column {name!r}: its features' train-split {part} overflows float32 "
                    "(values too large to normalise)",
                    hint="look for huge values in the column, fix them and rerun",
                )
        if cfg.method == "weighted-sum":
            rng = np.random.default_rng([cfg.seed, i])
            proj = rng.standard_normal((dim, cfg.width)) / np.sqrt(dim)
            state[f"{name}.projection"] = proj.astype(np.float32)
    return state


def apply_fusion(
    features: dict[str, np.ndarray],
    present: dict[str, np.ndarray],
    state: dict[str, np.ndarray],
    method: str,
    weights: dict[str, float],
    bad: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The fused matrix and its blocks ([{name, start, stop}]); same code for train and predict.

    A feature that normalises past float32's range comes out as inf or NaN; with ``bad``
    given, ``bad[name]`` is set to the rows where column ``name``'s part is not finite,
    and those rows of the part are zeroed, so nothing spreads to other columns.
    """
    parts, blocks, start = [], [], 0
    total = None
    for name, feats in features.items():
        z = column_part(name, feats, present[name], state, method, weights)
        if bad is not None:
            bad[name] = ~np.isfinite(z).all(axis=1)
            z[bad[name]] = 0.0
        if method == "weighted-sum":
            total = z if total is None else total + z
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


def column_part(
    name: str,
    feats: np.ndarray,
    present: np.ndarray,
    state: dict[str, np.ndarray],
    method: str,
    weights: dict[str, float],
) -> np.ndarray:
    """Column ``name``'s part of the fused matrix: its block (concat), or what it adds to
    the sum (weighted-sum); zero on rows where it is absent."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = (feats - state[f"{name}.mean"]) / state[f"{name}.std"]
        z[~present] = 0.0
        z *= np.float32(weights.get(name, 1.0))
        if method == "weighted-sum":
            z = z @ state[f"{name}.projection"]
    return z


def _refuse_overflow(bad: dict[str, np.ndarray], labels: np.ndarray) -> None:
    """A DataError naming the first column and row whose normalised features overflowed."""
    for name, rows in bad.items():
        if rows.any():
            raise DataError(
                f"column {name!r}, row {labels[np.flatnonzero(rows)[0]]}: its features "
                "normalised with the train-split statistics pass float32's largest value",
                hint="look for a huge value in that cell, fix it and rerun",
            )


def load_features(feats: Artifact, table: pd.DataFrame) -> tuple[dict, dict]:
    """Each column's features (memory-mapped) and presence flags."""
    features, present = {}, {}
    for info in feats.record.columns:
        features[info.name] = feats.array(info.features, mmap=True)
        present[info.name] = table[f"_present.{info.name}"].to_numpy(dtype=bool)
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
    names = [c.name for c in feats.record.columns]
    unknown = sorted(set(cfg.weights) - set(names))
    if unknown:
        raise UsageError(f"--weights names unknown columns {unknown}", hint=f"columns: {names}")
    key = artifacts.cache_key("fuse", cfg.identity(), {"upstream": feats.fingerprint})
    summary: dict[str, Any] = {"stage": "fuse", "out": str(cfg.out)}
    done = staleness.answer(cfg.out, key, cfg.identity(), summary, force=force, dry_run=dry_run)
    return done or _build(cfg, feats, key, summary, progress)


def _build(
    cfg: FuseConfig, feats: Artifact, key: str, summary: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    names = [c.name for c in feats.record.columns]
    table = feats.table("rows.parquet")
    sources = {c.name: feats.array_file(c.features) for c in feats.record.columns}
    present = {n: table[f"_present.{n}"].to_numpy(dtype=bool) for n in names}
    train = (table["_split"] == "train").to_numpy()
    progress("fitting the normalisation", 0, None)
    sparse = frozenset(c.name for c in feats.record.columns if c.encoder in SPARSE_ENCODERS)
    state = fit_fusion(sources, present, train, cfg, sparse)
    weights = {name: float(cfg.weights.get(name, 1.0)) for name in names}
    n = len(table)
    _, blocks = apply_fusion(
        {k: store.read_rows(v, slice(0, 1)) for k, v in sources.items()},
        {k: v[:1] for k, v in present.items()},
        state,
        cfg.method,
        weights,
    )
    for block in blocks:
        info = feats.record.column(block["name"])
        block["type"] = info.type if info else ("mask" if block["name"] == MASK_BLOCK else "fused")
    inputs = {"upstream": input_ref(feats, cfg.out)}
    summary.update(
        {
            "status": "built",
            "rows": n,
            "width": blocks[-1]["stop"],
            "method": cfg.method,
            "scale": cfg.scale,
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

        out = build.dir / "X.npy"
        store.create(out, n, (blocks[-1]["stop"],), np.float32)
        for start in range(0, n, CHUNK):
            rows = slice(start, min(start + CHUNK, n))
            bad: dict[str, np.ndarray] = {}
            x, _ = apply_fusion(
                {k: read_features(v, rows) for k, v in sources.items()},
                {k: v[rows] for k, v in present.items()},
                state,
                cfg.method,
                weights,
                bad,
            )
            _refuse_overflow(bad, table["_row"].to_numpy()[rows])
            store.write_rows(out, start, x)
            progress("fusing", rows.stop, n)
        table.to_parquet(build.dir / "rows.parquet", index=False)
        save_file(state, str(build.dir / "fusion.safetensors"))
        build.info.update(
            {
                "blocks": blocks,
                "weights": weights,
                "columns": names,
                "schema": feats.record.table,
                "summary": {k: summary[k] for k in ("rows", "width", "method", "scale", "blocks")},
            }
        )
    return summary
