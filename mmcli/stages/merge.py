"""merge: join the shards of a preprocess or extract-features run into one artifact.

``--shard K/N`` splits a stage's rows into N equal blocks that run anywhere (make -j,
a cluster's job array, several machines). Merging checks that the N shards belong
together (same stage, parameters and input, each K once), then joins rows, arrays and
rejected rows in order, and does what needs every row at once: for preprocess,
duplicate ids across shards and the train/val/test split. The result holds the same
bytes and key as one unsharded run, so that run would find it up to date.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmcli import artifacts
from mmcli.artifacts import arrays as store
from mmcli.artifacts.hashing import file_sha256, json_sha256
from mmcli.artifacts.record import Artifact, input_ref, relative_to
from mmcli.artifacts.records import FeatureColumn, TableSchema
from mmcli.config import MergeConfig, PreprocessConfig
from mmcli.errors import DataError, UsageError
from mmcli.io.tables import read_table
from mmcli.stages import Progress, lean_summary, no_progress, staleness
from mmcli.stages import preprocess as prep_stage


def load_shards(paths: list[Path]) -> list[Artifact]:
    """The shards, ordered by K, checked to be all N shards of one run."""
    shards = [
        artifacts.load(p, stages=("preprocess", "extract-features"), shards_ok=True) for p in paths
    ]
    for art in shards:
        if not art.record.shard:
            raise UsageError(
                f"{art.path}: is a whole artifact, not a shard (built without --shard)"
            )
    shards.sort(key=lambda a: a.record.shard.index)
    first = shards[0]
    count = first.record.shard.count
    indexes = [a.record.shard.index for a in shards]
    if indexes != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(indexes))
        raise UsageError(
            f"shards {indexes} given, expected 1..{count} once each"
            + (f" (missing {', '.join(map(str, missing))})" if missing else " (a shard twice)")
        )

    def same(art: Artifact) -> Any:
        params = {k: v for k, v in art.params.items() if k != "shard"}
        inputs = art.record.inputs
        source = inputs.upstream.fingerprint if inputs.upstream else inputs.manifest.sha256
        return art.stage, art.record.mmcli_version, params, source

    for art in shards[1:]:
        if same(art) != same(first):
            raise UsageError(
                f"{art.path} and {first.path} are not shards of one run "
                "(stage, mmcli version, parameters or input differ)"
            )
    return shards


@artifacts.exclusive
def run(cfg: MergeConfig, progress: Progress = no_progress, force: bool = False) -> dict[str, Any]:
    shards = load_shards(list(cfg.shards))
    stage = shards[0].stage
    summary: dict[str, Any] = {"stage": "merge", "merged": stage, "out": str(cfg.out)}
    merge = _merge_prep if stage == "preprocess" else _merge_feats
    return merge(shards, cfg.out, summary, force, progress)


# -- preprocess -------------------------------------------------------------------------
def _merge_prep(
    shards: list[Artifact], out: Path, summary: dict[str, Any], force: bool, progress: Progress
) -> dict[str, Any]:
    first = shards[0]
    record = first.record
    schema = record.table
    recorded = record.inputs.manifest
    manifest = first.resolve(recorded.path)
    if not manifest.is_file() or file_sha256(manifest) != recorded.sha256:
        raise DataError(
            f"{manifest}: the manifest the shards were made from is gone or changed",
            hint="rerun the shards on the current manifest",
        )
    params = {**first.params, "shard": None}
    cfg = PreprocessConfig.model_validate({**params, "manifest": manifest, "out": out})
    files = (
        pd.concat([s.table("files.parquet") for s in shards], ignore_index=True)
        .drop_duplicates("file")
        .sort_values("file", ignore_index=True)
    )
    every = dict(zip(files["file"], files["sha256"], strict=True))
    inputs = {
        # Paths relative to the merged artifact, as one run writing it would record them.
        "manifest": {"path": relative_to(manifest, out), "sha256": recorded.sha256},
        "files": {"count": len(every), "sha256": json_sha256(every)},
    }
    key = artifacts.cache_key(
        "preprocess", params, {"manifest": recorded.sha256, "files": inputs["files"]}
    )
    if done := staleness.answer(out, key, params, summary, force=force, dry_run=False):
        return done

    progress("joining rows", 0, None)
    table = pd.concat([s.table("rows.parquet") for s in shards], ignore_index=True)
    rejects = pd.concat([s.table("rejected.parquet") for s in shards], ignore_index=True)
    rejects = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in rejects.to_dict("records")
    ]
    table, rejects, drop = _rejoin_duplicates(table, rejects, manifest, schema)
    prep_stage.sort_rejects(rejects, schema)
    rows = shards[-1].record.shard.rows[1]  # the last shard ends at the last row
    if warnings := prep_stage.finish(table, rejects, cfg, schema, rows):
        summary["warnings"] = warnings
    summary.update(prep_stage.describe(table, rejects, schema, rows, out))
    with artifacts.Builder(
        out, stage="preprocess", params=params, inputs=inputs, key=key, seed=cfg.seed
    ) as build:
        (build.dir / "arrays").mkdir()
        for name, rel in schema.arrays.items():
            progress(f"joining {name}", 0, None)
            joined = build.dir / (rel + ".all")
            store.concat([s.array_file(rel) for s in shards], joined)
            store.select(joined, build.dir / rel, np.flatnonzero(~drop))
        prep_stage.write_tables(build.dir, table, rejects, files)
        build.info.update(
            {
                "schema": schema,
                "summary": lean_summary(summary),
                "paths": {"data_root": relative_to(first.resolve(record.paths.data_root), out)},
            }
        )
    return summary


def _rejoin_duplicates(
    table: pd.DataFrame, rejects: list[dict[str, Any]], manifest: Path, schema: TableSchema
) -> tuple[pd.DataFrame, list[dict[str, Any]], np.ndarray]:
    """Duplicate ids found again over the whole manifest (one can span shards): the rows
    kept, the rejected rows, and which joined rows were dropped."""
    drop = np.zeros(len(table), dtype=bool)
    id_col = schema.id_column
    if id_col:
        # A duplicate id can span shards: find them again over the whole manifest. As in
        # one run, a duplicate row is rejected before its files are decoded, so the media
        # problems a shard found in it are dropped.
        ids = prep_stage.manifest_ids(read_table(manifest), schema)
        dups = prep_stage.duplicate_ids(ids)
        media = {c.name for c in schema.input_columns() if c.type in prep_stage.MEDIA}
        rejects = [
            r
            for r in rejects
            if not (r["column"] == id_col and str(r["reason"]).startswith("duplicate id "))
            and not (r["row"] in dups and r["column"] in media)
        ]
        rejects += [
            {
                "row": row,
                "id": ids[row],
                "column": id_col,
                "file": None,
                "reason": reason,
                "action": "rejected",
            }
            for row, reason in dups.items()
        ]
        drop = table["_row"].isin(list(dups)).to_numpy()
        table = table[~drop].reset_index(drop=True)
    return table, rejects, drop


# -- extract-features -------------------------------------------------------------------
def _merge_feats(
    shards: list[Artifact], out: Path, summary: dict[str, Any], force: bool, progress: Progress
) -> dict[str, Any]:
    first = shards[0]
    record = first.record
    prep = first.upstream()
    params = {**first.params, "shard": None}
    key = artifacts.cache_key("extract-features", params, {"upstream": prep.fingerprint})
    if done := staleness.answer(out, key, params, summary, force=force, dry_run=False):
        return done
    for info in record.columns:
        for name in _encoder_files(info):
            digests = {s.record.outputs[name].sha256 for s in shards}
            if len(digests) != 1:
                raise UsageError(
                    f"shards disagree on the fitted {info.name} encoder ({name})",
                    hint="rebuild the shards with the same mmcli version and parameters",
                )
    inputs = {"upstream": input_ref(prep, out)}
    table = pd.concat([s.table("rows.parquet") for s in shards], ignore_index=True)
    summary.update({"status": "built", **record.summary, "rows": len(table)})
    with artifacts.Builder(
        out, stage="extract-features", params=params, inputs=inputs, key=key
    ) as build:
        (build.dir / "features").mkdir()
        (build.dir / "encoders").mkdir()
        for info in record.columns:
            progress(f"joining {info.name}", 0, None)
            store.concat([s.array_file(info.features) for s in shards], build.dir / info.features)
            for name in _encoder_files(info):
                shutil.copyfile(first.file(name), build.dir / name)
        table.to_parquet(build.dir / "rows.parquet", index=False)
        build.info.update(
            {
                "columns": record.columns,
                "schema": record.table,
                "summary": {k: summary[k] for k in ("rows", "encoders")},
            }
        )
    return summary


def _encoder_files(info: FeatureColumn) -> list[str]:
    """A column's fitted encoder files: its state, and its arrays if it has any."""
    return [info.state, *([info.arrays] if info.arrays else [])]
