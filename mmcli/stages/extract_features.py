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

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmcli import __version__, artifacts, encoders, parallel
from mmcli.artifacts import arrays as store
from mmcli.artifacts.hashing import canonical_json
from mmcli.artifacts.record import Artifact, input_ref
from mmcli.artifacts.records import Column, FeatureColumn, TableSchema
from mmcli.config import ExtractConfig
from mmcli.encoders.base import Overflow
from mmcli.errors import DataError, MmcliError
from mmcli.stages import Progress, no_progress, staleness
from mmcli.stages.schema import column_slugs

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 512
#: Rows per task sent to a worker process (media columns).
MEDIA_CHUNK = 128
ROW_COLUMNS = ("_row", "_id", "_split", "_target")
MEDIA = ("image", "audio", "video")


def column_values(
    kind: str, name: str, table: pd.DataFrame, arrays: dict[str, Any], idx: np.ndarray
) -> Any:
    """The values of rows ``idx`` of one column, in the form its encoder takes."""
    if kind in MEDIA:
        source = arrays[name]
        if isinstance(source, Path):  # an array file: read just these rows
            return store.read_rows(source, idx)
        return np.asarray(source[idx])
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
    """Transform every present row into an in-memory array (predict); missing rows stay zero."""
    out = np.zeros((len(table), encoder.dim), dtype=np.float32)
    idx = np.flatnonzero(present)
    # A video row holds K frames: fewer rows per chunk keep the chunk's frames near CHUNK.
    step = max(1, CHUNK // arrays[name].shape[1]) if kind == "video" else CHUNK
    for start in range(0, len(idx), step):
        chunk = idx[start : start + step]
        out[chunk] = encoder.transform(column_values(kind, name, table, arrays, chunk))
        progress(f"encoding {name}", min(start + step, len(idx)), len(idx))
    return out


def _encode_block(task: tuple[Any, ...]) -> int:
    """Encode output rows [start, stop) of one column and write them; runs in any process.

    ``rows`` are the prep rows of the block, ``present`` which of them have a value and
    ``reused`` (block offset -> row of a previous output) those already encoded before.
    Returns the block's row count and the offset of its first row whose features are not
    finite (the block is then not written), or None.
    """
    encoder, kind, values, source, out, start, rows, present, reused = task
    block = np.zeros((len(rows), encoder.dim), dtype=np.float32)
    if reused:
        offsets = np.array(sorted(reused))
        old = np.array([reused[o] for o in offsets])
        block[offsets] = store.read_rows(source["previous"], old)
    todo = np.array([o for o in np.flatnonzero(present) if o not in reused], dtype=np.int64)
    if len(todo):
        if values is None:
            values = store.read_rows(source["array"], rows[todo])
        else:
            values = [values[o] for o in todo] if isinstance(values, list) else values[todo]
        block[todo] = encoder.transform(values)
    # Checked as the block is written: a feature that is not finite (a huge number
    # standardised past float32) would reach fuse and every model as NaN.
    bad = nonfinite_rows(block)
    if len(bad):
        return len(rows), int(bad[0])
    store.write_rows(out, start, block)
    return len(rows), None


def nonfinite_rows(block: np.ndarray) -> np.ndarray:
    """Positions of the rows of a 2-D block holding inf or NaN."""
    return np.flatnonzero(~np.isfinite(block).all(axis=1))


@dataclass
class Previous:
    """A column of the output already at ``--out``: rows by content hash, to reuse."""

    features: Path
    rows: dict[str, int]


def previous_features(
    old: Artifact | None, schema: TableSchema, info: FeatureColumn, state_text: str
) -> Previous | None:
    """What the previous output ``old`` can give for ``column``: same encoder, state and
    decoding.

    Only encoders that learn nothing qualify (a fitted one changes with the train split),
    and only media columns, whose rows carry the content hash of their file.
    """
    if old is None:
        return None
    try:
        column, kind = info.name, info.type
        old_info = old.record.column(column)
        if old.record.mmcli_version != __version__ or old_info is None:
            return None
        from mmcli.stages.media import decode_params

        if (
            kind not in MEDIA
            or (old_info.type, old_info.encoder, old_info.dim) != (kind, info.encoder, info.dim)
            or old.file(old_info.state).read_text(encoding="utf-8") != state_text
            or decode_params(kind, old.record.table) != decode_params(kind, schema)
        ):
            return None
        table = old.table("rows.parquet")
        features = old.array_file(old_info.features)
    except MmcliError:
        return None
    sha = f"_sha.{column}"
    if sha not in table.columns:
        return None
    rows: dict[str, int] = {}
    for position, (digest, here) in enumerate(
        zip(table[sha].tolist(), table[f"_present.{column}"].tolist(), strict=True)
    ):
        if digest is not None and here:
            rows.setdefault(digest, position)
    return Previous(features, rows)


def column_key(
    cfg: ExtractConfig, col: Column, table: pd.DataFrame, rows: tuple[int, int]
) -> str | None:
    """What a text, number or category column's features depend on: the mmcli version, the
    parameters, every value, which rows have one and which are train (what a fitted encoder
    learns from), and the rows encoded. None for media columns, reused row by row instead.
    """
    name, kind = col.name, col.type
    if kind in MEDIA:
        return None
    column = col.model_dump(mode="json")
    head = {"version": __version__, "params": cfg.identity(), "column": column, "rows": rows}
    digest = hashlib.sha256(canonical_json(head).encode())
    digest.update(canonical_json(table[name].tolist()).encode())
    for mask in (table[f"_present.{name}"], table["_split"] == "train"):
        digest.update(np.packbits(mask.to_numpy(dtype=bool)).tobytes())
    return digest.hexdigest()


def reuse_column(
    old: Artifact | None, name: str, key: str | None, paths: dict[str, str], folder: Path
) -> FeatureColumn | None:
    """The previous output's features and fitted state for a column whose ``column_key`` is
    unchanged, hard-linked into ``folder`` at ``paths``: nothing is fitted or encoded again.
    The column's record entry comes back, or None when there is nothing to reuse.
    """
    if old is None or key is None or old.record.column_keys.get(name) != key:
        return None
    info = old.record.column(name)
    if info is None:
        return None
    parts = [part for part in paths if getattr(info, part, None)]
    try:
        for part in parts:
            store.link_or_copy(old.file(getattr(info, part)), folder / paths[part])
    except (OSError, MmcliError):
        for part in parts:
            (folder / paths[part]).unlink(missing_ok=True)
        return None
    return info.model_copy(update={part: paths[part] for part in parts})


def resolution_warnings(schema: TableSchema, chosen: dict[str, str]) -> list[str]:
    """One line per image or video column whose pretrained encoder reads larger images
    than preprocess stored (they are upscaled, and the network sees less than it could)."""
    lines = []
    for col in schema.input_columns():
        if col.type not in ("image", "video"):
            continue
        size = encoders.spec("image", chosen[col.name]).input_size
        if size and schema.image_size < size:
            lines.append(
                f"{col.name}: {chosen[col.name]} reads {size} px images but preprocess "
                f"stored {schema.image_size} px, upscaled here; for its full resolution "
                f"run preprocess with --image-size {size} (and this stage again)"
            )
    return lines


def create_encoder(kind: str, name: str, schema: TableSchema, cfg: ExtractConfig) -> Any:
    """A new encoder for one column; a video column's frames go through image encoder ``name``."""
    if kind == "video":
        from mmcli.encoders.video import VideoFrames

        return VideoFrames(image=name, pool=cfg.video_pool)
    options = {"sample_rate": schema.sample_rate} if kind == "audio" else {}
    return encoders.create(kind, name, **options)


def load_encoder(feats: Artifact, info: FeatureColumn) -> Any:
    """Rebuild a fitted encoder from its stored state (JSON + safetensors, no pickle)."""
    meta = feats.json(info.state)
    arrays = feats.tensors(info.arrays) if info.arrays else {}
    if info.type == "video":
        from mmcli.encoders.video import VideoFrames

        return VideoFrames.from_state(meta, arrays)
    return encoders.encoder_class(info.type, info.encoder).from_state(meta, arrays)


def _prep_layouts(prep: Artifact) -> dict[str, tuple[str, tuple[int, ...], str]]:
    """Each media column's array in a preprocess artifact: (file, row shape, dtype)."""
    from mmcli.stages.media import media_layout

    schema: TableSchema = prep.record.table
    kinds = {c.name: c.type for c in schema.columns}
    return {
        name: (rel, *media_layout(kinds[name], schema))
        for name, rel in schema.arrays.items()
        if name in kinds
    }


def prep_array_files(prep: Artifact) -> dict[str, Path]:
    """Each media column's array file in a preprocess artifact, its header checked against
    the record: one row per row of the table, each of the column's decoded shape."""
    return {
        name: prep.array_file(rel, shape, dtype)
        for name, (rel, shape, dtype) in _prep_layouts(prep).items()
    }


def load_prep_arrays(prep: Artifact) -> dict[str, np.ndarray]:
    """Each media column's array, memory-mapped, its header checked as ``prep_array_files``."""
    return {
        name: prep.array(rel, mmap=True, shape=shape, dtype=dtype)
        for name, (rel, shape, dtype) in _prep_layouts(prep).items()
    }


def _previous_output(out: Path) -> Artifact | None:
    try:
        return artifacts.load(out, stages=("extract-features",), shards_ok=True)
    except MmcliError:
        return None


@artifacts.exclusive
def run(
    cfg: ExtractConfig,
    progress: Progress = no_progress,
    force: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Fit encoders on the train split and encode every row of a preprocess artifact."""
    prep = artifacts.load(cfg.prep, stages=("preprocess",))
    schema: TableSchema = prep.record.table
    chosen = {c.name: getattr(cfg, c.type) for c in schema.input_columns()}
    for col in schema.input_columns():  # unknown names fail before any work
        encoders.spec("image" if col.type == "video" else col.type, chosen[col.name])
    key = artifacts.cache_key("extract-features", cfg.identity(), {"upstream": prep.fingerprint})
    summary: dict[str, Any] = {"stage": "extract-features", "out": str(cfg.out)}
    done = staleness.answer(cfg.out, key, cfg.identity(), summary, force=force, dry_run=dry_run)
    return done or _build(cfg, prep, chosen, key, summary, force, progress)


def _build(
    cfg: ExtractConfig,
    prep: Artifact,
    chosen: dict[str, str],
    key: str,
    summary: dict[str, Any],
    force: bool,
    progress: Progress,
) -> dict[str, Any]:
    # Imported only now: an up-to-date run answers without pandas and the media decoders.
    from mmcli.stages.preprocess import shard_rows

    table = prep.table("rows.parquet")
    shard = cfg.shard_numbers()
    rows = shard_rows(len(table), shard)
    inputs = {"upstream": input_ref(prep, cfg.out)}
    with artifacts.Builder(
        cfg.out, stage="extract-features", params=cfg.identity(), inputs=inputs, key=key
    ) as build:
        (build.dir / "features").mkdir()
        (build.dir / "encoders").mkdir()
        old = None if force else _previous_output(cfg.out)
        infos, keys = _encode_columns(
            cfg, prep, chosen, table, rows, old, force, build.dir, progress
        )
        keep = [
            c
            for c in table.columns
            if c in ROW_COLUMNS or c.startswith("_present.") or c.startswith("_sha.")
        ]
        table.iloc[rows[0] : rows[1]][keep].to_parquet(build.dir / "rows.parquet", index=False)
        summary.update(
            {
                "status": "built",
                "rows": rows[1] - rows[0],
                "encoders": {i.name: f"{i.encoder} ({i.dim})" for i in infos},
            }
        )
        warnings = resolution_warnings(prep.record.table, chosen)
        if warnings:
            summary["warnings"] = warnings
        if shard is not None:
            summary["shard"] = f"{shard[0]}/{shard[1]}"
            build.info["shard"] = {"index": shard[0], "count": shard[1], "rows": list(rows)}
        build.info.update(
            {
                "columns": infos,
                # Per column, what its features depend on: an unchanged column is linked
                # from this artifact by the next build (a shard's own; merge drops them).
                "column_keys": keys,
                "schema": prep.record.table,
                "summary": {k: summary[k] for k in ("rows", "encoders")},
            }
        )
    return summary


def _encode_columns(
    cfg: ExtractConfig,
    prep: Artifact,
    chosen: dict[str, str],
    table: pd.DataFrame,
    rows: tuple[int, int],
    old: Artifact | None,
    force: bool,
    folder: Path,
    progress: Progress,
) -> tuple[list[FeatureColumn], dict[str, str]]:
    """Each input column's features in ``folder``: linked from the previous output when
    nothing it depends on changed, else fitted and encoded. Returns the columns' record
    entries and their keys."""
    schema: TableSchema = prep.record.table
    sources = prep_array_files(prep)
    train = (table["_split"] == "train").to_numpy()
    workers = parallel.resolve_workers(cfg.workers)
    slugs = column_slugs(schema)
    infos: list[FeatureColumn] = []
    keys: dict[str, str] = {}
    for col in schema.input_columns():
        name, slug = col.name, slugs[col.name]
        key = column_key(cfg, col, table, rows)
        if key is not None:
            keys[name] = key
        paths = {
            "features": f"features/{slug}.npy",
            "state": f"encoders/{slug}.json",
            "arrays": f"encoders/{slug}.safetensors",
        }
        if (info := reuse_column(old, name, key, paths, folder)) is not None:
            infos.append(info)  # same values, same train rows: same fit, same features
            progress(f"encoding {name}", rows[1] - rows[0], rows[1] - rows[0])
            continue
        infos.append(
            _fit_and_encode(
                cfg,
                col,
                chosen[name],
                schema,
                table,
                sources,
                train,
                old,
                force,
                paths,
                folder,
                rows,
                workers,
                progress,
            )  # fmt: skip
        )
    return infos, keys


def _fit_and_encode(
    cfg: ExtractConfig,
    col: Column,
    encoder_name: str,
    schema: TableSchema,
    table: pd.DataFrame,
    sources: dict[str, Path],
    train: np.ndarray,
    old: Artifact | None,
    force: bool,
    paths: dict[str, str],
    folder: Path,
    rows: tuple[int, int],
    workers: int,
    progress: Progress,
) -> FeatureColumn:
    """Fit one column's encoder on the train split (if it learns), store its state, and
    encode ``rows`` into ``folder``; returns the column's record entry."""
    name, kind = col.name, col.type
    start, stop = rows
    present = table[f"_present.{name}"].to_numpy()
    encoder = create_encoder(kind, encoder_name, schema, cfg)
    if encoder.fitted:
        # Every shard fits on the whole train split, so all shards agree.
        fit_idx = np.flatnonzero(train & present)
        if len(fit_idx) == 0:
            raise DataError(
                f"column {name!r}: no train row has a value to fit the {encoder_name} encoder on"
            )
        progress(f"fitting {name}", 0, None)
        try:
            encoder.fit(column_values(kind, name, table, sources, fit_idx))
        except Overflow as exc:
            raise DataError(
                f"column {name!r}, row {table['_row'].iloc[fit_idx[exc.index]]}: {exc.message}",
                hint="fix or remove the value in the manifest, then rerun",
            ) from None
    meta, state_arrays = encoder.state()
    info = FeatureColumn(
        name=name,
        type=kind,
        encoder=encoder_name,
        dim=encoder.dim,
        features=paths["features"],
        state=paths["state"],
        arrays=paths["arrays"] if state_arrays else None,
    )
    state_text = json.dumps(meta, sort_keys=True, indent=1) + "\n"
    (folder / info.state).write_text(state_text, encoding="utf-8")
    if state_arrays:
        from safetensors.numpy import save_file

        save_file(
            {k: np.ascontiguousarray(v) for k, v in state_arrays.items()},
            str(folder / paths["arrays"]),
        )
    previous = None if force or encoder.fitted else previous_features(old, schema, info, state_text)
    _encode_column(
        encoder,
        col,
        table.iloc[start:stop],
        sources.get(name),
        previous,
        folder / info.features,
        workers,
        progress,
    )
    return info


def _encode_column(
    encoder: Any,
    col: Column,
    rows: pd.DataFrame,
    source: Path | None,
    previous: Previous | None,
    out: Path,
    workers: int,
    progress: Progress,
) -> None:
    """Encode ``rows`` of one column into ``out``, a block at a time.

    Media blocks go to worker processes, which read their rows from the prep array
    themselves; text and numbers are cheap and encoded here. Rows whose file the
    previous output already encoded (same content hash) are copied, not recomputed.
    """
    name, kind = col.name, col.type
    n = len(rows)
    store.create(out, n, (encoder.dim,), np.float32)
    present = rows[f"_present.{name}"].to_numpy(dtype=bool)
    positions = rows.index.to_numpy()  # rows of the prep artifact
    digests = rows[f"_sha.{name}"].tolist() if f"_sha.{name}" in rows else [None] * n
    media = kind in MEDIA
    chunk = MEDIA_CHUNK if media else CHUNK * 8
    in_process = not media or not encoder.processes
    values_all = None if media else column_values(kind, name, rows, {}, np.arange(n))

    def tasks() -> Any:
        for first in range(0, n, chunk):
            last = min(first + chunk, n)
            reused = {}
            if previous is not None:
                for o in range(first, last):
                    hit = previous.rows.get(digests[o]) if present[o] else None
                    if hit is not None:
                        reused[o - first] = hit
            values = None
            if values_all is not None:
                values = (
                    values_all[first:last]
                    if isinstance(values_all, list)
                    else values_all[first:last]
                )
            src = {"array": source, "previous": previous.features if previous else None}
            yield (
                encoder,
                kind,
                values,
                src,
                out,
                first,
                positions[first:last],
                present[first:last],
                reused,
            )

    done = 0
    for count, bad in parallel.ordered_map(_encode_block, tasks(), 1 if in_process else workers):
        if bad is not None:
            at = done + bad
            value = rows[name].iloc[at] if kind == "number" else None
            raise DataError(
                f"column {name!r}, row {rows['_row'].iloc[at]}: " + encoder.nonfinite_reason(value),
                hint="fix or remove the value in the manifest (or give the column another "
                "type with --input), then rerun",
            )
        done += count
        progress(f"encoding {name}", done, n)
