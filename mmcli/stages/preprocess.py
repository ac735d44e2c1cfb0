"""preprocess: manifest -> validated, fixed-shape tensors and tables, split into train/val/test.

Output artifact::

    rows.parquet      one row per kept sample: _row (manifest row), _id, _split, _target,
                      text/number/category values, _present.<column> flags
    arrays/<col>.npy  images (n, S, S, 3) uint8; audio (n, samples) float32; video frames
                      (n, K, S, S, 3) uint8, the soundtrack as audio column <col>.audio
                      (zeros where missing)
    rejected.parquet  row, id, column, file, reason, action for every problem found
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts.hashing import file_sha256, json_sha256
from mmcli.config import PreprocessConfig
from mmcli.errors import DataError
from mmcli.io.audio import AudioRejected, load_audio
from mmcli.io.images import ImageRejected, load_image
from mmcli.io.paths import PathRejected, resolve_in_root
from mmcli.io.tables import read_table
from mmcli.io.text import normalise_text
from mmcli.io.video import VideoRejected, load_video
from mmcli.stages import Progress, no_progress
from mmcli.stages.schema import (
    SPLIT_NAMES,
    column_slugs,
    infer_schema,
    input_columns,
    label_of,
    manifest_columns,
    parse_number,
)

MEDIA = ("image", "audio", "video")
REJECTED_COLUMNS = ["row", "id", "column", "file", "reason", "action"]


def array_files(schema: dict[str, Any]) -> dict[str, str]:
    """Column name -> file name of its array, for image, audio and video columns."""
    slugs = column_slugs(schema)
    return {
        c["name"]: f"arrays/{slugs[c['name']]}.npy"
        for c in input_columns(schema)
        if c["type"] in MEDIA
    }


def decode_cell(col: dict[str, Any], path: Path, schema: dict[str, Any]) -> dict[str, np.ndarray]:
    """One media file decoded: {column: array}. A video fills its soundtrack column too,
    when the clip has sound (no soundtrack is a missing modality, not an error)."""
    name, kind = col["name"], col["type"]
    if kind == "image":
        return {name: load_image(path, schema["image_size"])}
    if kind == "audio":
        return {name: load_audio(path, schema["sample_rate"], schema["audio_seconds"])}
    frames, sound = load_video(
        path,
        schema["video_frames"],
        schema["image_size"],
        schema["sample_rate"],
        schema["audio_seconds"],
        schema["video_max_seconds"],
    )
    return {name: frames} if sound is None else {name: frames, f"{name}.audio": sound}


def _media_shape(kind: str, schema: dict[str, Any]) -> tuple[int, ...]:
    size = schema["image_size"]
    if kind == "image":
        return (size, size, 3)
    if kind == "video":
        return (schema["video_frames"], size, size, 3)
    return (int(round(schema["audio_seconds"] * schema["sample_rate"])),)


@dataclass
class Prepared:
    """Rows that passed validation, in manifest order."""

    table: pd.DataFrame
    arrays: dict[str, np.ndarray]
    rejects: list[dict[str, Any]] = field(default_factory=list)


def prepare(
    df: pd.DataFrame,
    schema: dict[str, Any],
    root: Path,
    *,
    on_error: str,
    with_target: bool = True,
    progress: Progress = no_progress,
) -> Prepared:
    """Validate and convert every cell. Shared by ``preprocess`` and ``predict``.

    A cell that is empty is a missing modality. A cell that is bad (file missing, not
    decodable, outside the data folder, not a number) is handled by ``on_error``:
    ``skip`` rejects the row, ``fail`` raises DataError, ``keep`` keeps the row with the
    modality marked missing. A bad target or split always rejects the row.
    """
    n = len(df)
    id_col = schema.get("id_column")
    ids = [
        None if id_col is None or v is None else str(v)
        for v in (df[id_col] if id_col else [None] * n)
    ]
    rejects: list[dict[str, Any]] = []
    rejected: set[int] = set()

    def problem(
        row: int, column: str, reason: str, file: str | None = None, always_reject: bool = False
    ) -> None:
        where = f"row {row}" + (f" (id {ids[row]})" if ids[row] else "") + f", column {column!r}"
        if file:
            where += f", file {file!r}"
        if on_error == "fail":
            raise DataError(
                f"{where}: {reason}",
                hint="fix the row, or use --on-error skip to set such rows aside",
            )
        reject = always_reject or on_error == "skip"
        rejects.append(
            {
                "row": row,
                "id": ids[row],
                "column": column,
                "file": file,
                "reason": reason,
                "action": "rejected" if reject else "kept, value missing",
            }
        )
        if reject:
            rejected.add(row)

    if id_col and with_target:
        first: dict[str, int] = {}
        for row, value in enumerate(ids):
            if value is not None and first.setdefault(value, row) != row:
                problem(
                    row,
                    id_col,
                    f"duplicate id {value!r} (first at row {first[value]})",
                    always_reject=True,
                )

    target = schema["target"]
    targets: list[Any] = [None] * n
    if with_target:
        classes = {c: i for i, c in enumerate(target.get("classes", []))}
        for row, value in enumerate(df[target["name"]].tolist()):
            try:
                if target["task"] == "regression":
                    targets[row] = parse_number(value)
                else:
                    targets[row] = None if value is None else classes.get(label_of(value), -1)
                    if targets[row] == -1:
                        raise ValueError(f"label {label_of(value)!r} is not one of the classes")
            except ValueError as exc:
                problem(row, target["name"], str(exc), always_reject=True)
                continue
            if targets[row] is None:
                problem(row, target["name"], "target value is missing", always_reject=True)

    splits: list[str | None] = [None] * n
    if schema.get("split_column") and with_target:
        for row, value in enumerate(df[schema["split_column"]].tolist()):
            splits[row] = SPLIT_NAMES.get(str(value).strip().lower()) if value is not None else None
            if splits[row] is None:
                problem(
                    row,
                    schema["split_column"],
                    f"split {value!r} is not train, val, validation or test",
                    always_reject=True,
                )

    values: dict[str, list[Any]] = {}
    columns = input_columns(schema)
    present = {c["name"]: np.zeros(n, dtype=bool) for c in columns}
    media: dict[str, dict[int, np.ndarray]] = {c["name"]: {} for c in columns if c["type"] in MEDIA}
    total = sum(len(df) for c in manifest_columns(schema) if c["type"] in MEDIA)
    done = 0
    for col in manifest_columns(schema):
        name, kind = col["name"], col["type"]
        cells = df[name].tolist()
        if kind in MEDIA:
            for row, cell in enumerate(cells):
                done += 1
                if done % 64 == 0 or done == total:
                    progress("decoding media", done, total)
                if row in rejected or cell is None or str(cell).strip() == "":
                    continue
                try:
                    path = resolve_in_root(str(cell), root)
                    for part, array in decode_cell(col, path, schema).items():
                        if part in media:
                            media[part][row] = array
                            present[part][row] = True
                except (PathRejected, ImageRejected, AudioRejected, VideoRejected) as exc:
                    problem(row, name, str(exc), file=str(cell))
                except OSError as exc:
                    problem(row, name, f"cannot read file: {exc.strerror or exc}", file=str(cell))
            continue
        converted: list[Any] = []
        for row, cell in enumerate(cells):
            try:
                if kind == "number":
                    value = parse_number(cell)
                elif kind == "text":
                    value = normalise_text(cell)
                else:
                    value = None if cell is None else str(cell).strip() or None
            except ValueError as exc:
                problem(row, name, str(exc))
                value = None
            converted.append(value)
            present[name][row] = value is not None
        values[name] = converted

    keep = [row for row in range(n) if row not in rejected]
    table = pd.DataFrame(
        {
            "_row": np.asarray(keep, dtype=np.int64),
            "_id": pd.Series([ids[r] for r in keep], dtype=object),
        }
    )
    if with_target:
        table["_split"] = [splits[r] for r in keep]
        dtype = np.float64 if target["task"] == "regression" else np.int64
        table["_target"] = np.asarray([targets[r] for r in keep], dtype=dtype)
    for col in columns:
        name = col["name"]
        if name in values:
            column = [values[name][r] for r in keep]
            table[name] = (
                np.asarray([np.nan if v is None else v for v in column], dtype=np.float64)
                if col["type"] == "number"
                else pd.Series(column, dtype=object)
            )
    for col in columns:
        table[f"_present.{col['name']}"] = present[col["name"]][keep]
    arrays = {}
    for name, decoded in media.items():
        kind = next(c["type"] for c in columns if c["name"] == name)
        dtype = np.float32 if kind == "audio" else np.uint8
        array = np.zeros((len(keep), *_media_shape(kind, schema)), dtype=dtype)
        for i, row in enumerate(keep):
            if row in decoded:
                array[i] = decoded[row]
        arrays[name] = array
    return Prepared(table=table, arrays=arrays, rejects=rejects)


def assign_splits(targets: np.ndarray, task: str, val: float, test: float, seed: int) -> list[str]:
    """Seeded split; stratified by class for classification. Every class keeps a train row."""
    rng = np.random.default_rng(seed)
    splits = np.array(["train"] * len(targets), dtype=object)
    groups = (
        [np.flatnonzero(targets == c) for c in np.unique(targets)]
        if task == "classification"
        else [np.arange(len(targets))]
    )
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = int(round(len(idx) * test))
        n_val = int(round(len(idx) * val))
        if n_test + n_val >= len(idx):  # tiny group: keep at least one row for training
            n_test, n_val = min(n_test, max(len(idx) - 1, 0)), 0
        splits[idx[:n_test]] = "test"
        splits[idx[n_test : n_test + n_val]] = "val"
    return splits.tolist()


def input_fingerprints(df: pd.DataFrame, schema: dict[str, Any], root: Path) -> dict[str, Any]:
    """Content hashes of every media file the manifest points to (what decides a rerun)."""
    hashes: dict[str, str] = {}
    for col in manifest_columns(schema):
        if col["type"] not in MEDIA:
            continue
        for cell in df[col["name"]].tolist():
            if cell is None or str(cell) in hashes:
                continue
            try:
                hashes[str(cell)] = file_sha256(resolve_in_root(str(cell), root))
            except (PathRejected, OSError) as exc:
                hashes[str(cell)] = f"unreadable: {exc}"
    return {"count": len(hashes), "sha256": json_sha256(hashes)}


@artifacts.exclusive
def run(
    cfg: PreprocessConfig,
    progress: Progress = no_progress,
    force: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Run the preprocess stage; returns a summary (also when already up to date)."""
    df = read_table(cfg.manifest)
    if len(df) == 0:
        raise DataError(f"{cfg.manifest}: the manifest has a header but no rows")
    root = (cfg.data_root or cfg.manifest.parent).resolve()
    schema = infer_schema(df, cfg)
    progress("hashing input files", 0, None)
    inputs = {
        "manifest": {"path": str(cfg.manifest), "sha256": file_sha256(cfg.manifest)},
        "files": input_fingerprints(df, schema, root),
    }
    # Paths stay out of the key: moving a data folder does not make its artifacts stale.
    key = artifacts.cache_key(
        "preprocess",
        cfg.identity(),
        {"manifest": inputs["manifest"]["sha256"], "files": inputs["files"]},
    )
    summary: dict[str, Any] = {"stage": "preprocess", "out": str(cfg.out)}
    if not force and (record := artifacts.up_to_date(cfg.out, key)) is not None:
        return {**summary, "status": "up-to-date", **record["summary"]}
    if dry_run:
        return {
            **summary,
            "status": "would-build",
            "why": artifacts.rebuild_reason(cfg.out, cfg.identity()),
        }

    prepared = prepare(df, schema, root, on_error=cfg.on_error, progress=progress)
    table = prepared.table
    if len(table) == 0:
        raise DataError(
            f"{cfg.manifest}: every row was rejected",
            hint=f"first reason: {prepared.rejects[0]['reason']}" if prepared.rejects else None,
        )
    _check_max_errors(cfg, len(df), len(df) - len(table), prepared.rejects)
    if not schema.get("split_column"):
        table["_split"] = assign_splits(
            table["_target"].to_numpy(),
            schema["target"]["task"],
            cfg.val_fraction,
            cfg.test_fraction,
            cfg.seed,
        )
    split_counts = {s: int((table["_split"] == s).sum()) for s in ("train", "val", "test")}
    if split_counts["train"] == 0:
        raise DataError(f"{cfg.manifest}: no rows in the train split")
    files = array_files(schema)
    summary.update(
        {
            "status": "built",
            "rows": {
                "manifest": len(df),
                "kept": len(table),
                "rejected": len(df) - len(table),
                **split_counts,
            },
            "problems": len(prepared.rejects),
            "columns": {c["name"]: c["type"] for c in schema["columns"]},
            "task": schema["target"]["task"],
        }
    )
    with artifacts.Builder(
        cfg.out,
        stage="preprocess",
        params=cfg.identity(),
        inputs=inputs,
        key=key,
        seed=cfg.seed,
    ) as build:
        table.to_parquet(build.dir / "rows.parquet", index=False)
        (build.dir / "arrays").mkdir()
        for name, array in prepared.arrays.items():
            np.save(build.dir / files[name], array)
        pd.DataFrame(prepared.rejects, columns=REJECTED_COLUMNS).astype(
            {"row": np.int64}
        ).to_parquet(build.dir / "rejected.parquet", index=False)
        build.info.update(
            {
                "schema": {**schema, "arrays": files},
                "summary": _lean(summary),
                "paths": {"manifest": str(cfg.manifest.resolve()), "data_root": str(root)},
            }
        )
    return summary


def _lean(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("stage", "out", "status")}


def _check_max_errors(
    cfg: PreprocessConfig, rows: int, rejected: int, rejects: list[dict[str, Any]]
) -> None:
    if cfg.max_errors is None:
        return
    limit = cfg.max_errors if cfg.max_errors >= 1 else cfg.max_errors * rows
    if rejected > limit:
        first = rejects[0]
        raise DataError(
            f"{cfg.manifest}: {rejected} of {rows} rows rejected, over --max-errors "
            f"{cfg.max_errors:g}; first: row {first['row']}, column {first['column']!r}: "
            f"{first['reason']}",
            hint="see every reason with --on-error keep and `mmcli inspect`",
        )
