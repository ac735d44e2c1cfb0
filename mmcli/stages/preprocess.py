"""preprocess: manifest -> validated, fixed-shape tensors and tables, split into train/val/test.

Output artifact::

    rows.parquet      one row per kept sample: _row (manifest row), _id, _split, _target,
                      text/number/category values, _present.<column> flags, and
                      _sha.<column>: the SHA-256 of each row's image, audio or video file
    arrays/<col>.npy  images (n, S, S, 3) uint8; audio (n, samples) float32; video frames
                      (n, K, S, S, 3) uint8, the soundtrack as audio column <col>.audio
                      (zeros where missing)
    rejected.parquet  row, id, column, file, reason, action for every problem found
    files.parquet     every file the manifest names, with its SHA-256 (or why it is unreadable)

With ``--shard K/N`` the stage does rows K of N equal blocks of the manifest and leaves
the splits unassigned; ``mmcli merge`` joins the shards into what one run would write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmcli import artifacts, parallel
from mmcli.artifacts import arrays
from mmcli.artifacts.filecache import cache_path
from mmcli.artifacts.hashing import file_sha256
from mmcli.artifacts.record import relative_to
from mmcli.artifacts.records import PreprocessRecord, TableSchema, Target
from mmcli.config import PreprocessConfig
from mmcli.errors import DataError, MmcliError
from mmcli.io.text import normalise_text
from mmcli.stages import Progress, lean_summary, no_progress, staleness
from mmcli.stages.media import (
    CHUNK,
    MEDIA,
    Reuse,
    Sources,
    decode_chunk,
    decode_params,
    hash_sources,
    media_cells,
    media_layout,
    media_parts,
    previous_rows,
    unchanged_rows,
)
from mmcli.stages.schema import (
    SPLIT_NAMES,
    column_slugs,
    infer_schema,
    is_number,
    label_of,
    parse_number,
)

if TYPE_CHECKING:  # pandas loads only once there is work: an up-to-date check needs none
    import pandas as pd

REJECTED_COLUMNS = ["row", "id", "column", "file", "reason", "action"]


def array_files(schema: TableSchema) -> dict[str, str]:
    """Column name -> file name of its array, for image, audio and video columns."""
    slugs = column_slugs(schema)
    return {
        c.name: f"arrays/{slugs[c.name]}.npy" for c in schema.input_columns() if c.type in MEDIA
    }


@dataclass
class Prepared:
    """Rows that passed validation, in manifest order; arrays are memory-mapped files."""

    table: pd.DataFrame
    arrays: dict[str, np.ndarray]
    rejects: list[dict[str, Any]] = field(default_factory=list)
    #: SHA-256 of array files hashed while written (file name in ``array_dir`` -> digest).
    hashed: dict[str, str] = field(default_factory=dict)


def prepare(
    df: pd.DataFrame,
    schema: TableSchema,
    root: Path,
    array_dir: Path,
    *,
    on_error: str,
    with_target: bool = True,
    progress: Progress = no_progress,
    sources: Sources | None = None,
    workers: int = 1,
    reuse: dict[str, Reuse] | None = None,
    first_row: int = 0,
    hash_arrays: bool = False,
) -> Prepared:
    """Validate and convert every cell. Shared by ``preprocess`` and ``predict``.

    A cell that is empty is a missing modality. A cell that is bad (file missing, not
    decodable, outside the data folder, not a number) is handled by ``on_error``:
    ``skip`` rejects the row, ``fail`` raises DataError, ``keep`` keeps the row with the
    modality marked missing. A bad target or split always rejects the row.

    Media are decoded by ``workers`` processes, a chunk of rows at a time, straight into
    ``array_dir/<slug>.npy``: memory does not grow with the number of rows. Rows are
    numbered from ``first_row`` (a shard's first manifest row). With ``hash_arrays`` the
    SHA-256 of each array file kept as written comes back in ``Prepared.hashed``.
    """
    n = len(df)
    problems = _Problems(manifest_ids(df, schema), on_error, first_row)
    if sources is None:
        sources = hash_sources(media_cells(df, schema), root)
    targets: list[Any] = [None] * n
    splits: list[str | None] = [None] * n
    # Each step reports its problems as it finds them: under ``fail``, the order of the
    # steps decides which problem is raised.
    if with_target:
        if id_col := schema.id_column:
            for i, reason in duplicate_ids(problems.ids, first_row).items():
                problems.add(i, id_col, reason, always_reject=True)
        targets = _read_targets(df, schema.target, problems)
        if schema.split_column:
            splits = _read_splits(df, schema.split_column, problems)
    columns = _Columns()
    _decode_media(
        df,
        schema,
        array_dir,
        problems,
        columns,
        sources=sources,
        reuse=reuse or {},
        workers=workers,
        hash_arrays=hash_arrays,
        progress=progress,
    )
    _convert_values(df, schema, problems, columns)
    keep = np.array([i for i in range(n) if i not in problems.rejected], dtype=np.int64)
    table = _build_table(
        schema, problems.ids, targets, splits, columns, keep, first_row, with_target
    )
    stored, hashed = _store_arrays(array_dir, schema, columns, keep, n)
    sort_rejects(problems.rejects, schema)
    return Prepared(table=table, arrays=stored, rejects=problems.rejects, hashed=hashed)


@dataclass
class _Problems:
    """The problems one ``prepare`` call finds, and the rows they set aside.

    ``rejected`` is one set for the whole call that every later step reads as it grows:
    a row set aside is not decoded for the next column, and an array file stops being
    hashed while written once any row is set aside.
    """

    ids: list[str | None]
    on_error: str
    first_row: int
    rejects: list[dict[str, Any]] = field(default_factory=list)
    rejected: set[int] = field(default_factory=set)

    def add(
        self, i: int, column: str, reason: str, file: str | None = None, always_reject: bool = False
    ) -> None:
        """Record the problem of row ``i`` of the frame, or raise it under ``fail``."""
        row, ids = self.first_row + i, self.ids
        where = f"row {row}" + (f" (id {ids[i]})" if ids[i] else "") + f", column {column!r}"
        if file:
            where += f", file {file!r}"
        if self.on_error == "fail":
            raise DataError(
                f"{where}: {reason}",
                hint="fix the row, or use --on-error skip to set such rows aside",
            )
        reject = always_reject or self.on_error == "skip"
        self.rejects.append(
            {
                "row": row,
                "id": ids[i],
                "column": column,
                "file": file,
                "reason": reason,
                "action": "rejected" if reject else "kept, value missing",
            }
        )
        if reject:
            self.rejected.add(i)


def _read_targets(df: pd.DataFrame, target: Target, problems: _Problems) -> list[Any]:
    """Each row's target: a number, or its class's index; a bad or missing one rejects."""
    targets: list[Any] = [None] * len(df)
    classes = {c: i for i, c in enumerate(target.classes or [])}
    for i, value in enumerate(df[target.name].tolist()):
        try:
            if target.task == "regression":
                targets[i] = parse_number(value)
            else:
                targets[i] = None if value is None else classes.get(label_of(value), -1)
                if targets[i] == -1:
                    raise ValueError(f"label {label_of(value)!r} is not one of the classes")
        except Exception as exc:  # noqa: BLE001 - any label that does not convert
            problems.add(i, target.name, _cell_error(exc), always_reject=True)
            continue
        if targets[i] is None:
            problems.add(i, target.name, "target value is missing", always_reject=True)
    return targets


def _cell_error(exc: Exception) -> str:
    """A cell's problem as its row's reason: a ValueError says it; anything else is named."""
    if isinstance(exc, ValueError):
        return str(exc)
    return f"cannot read this value ({type(exc).__name__}: {str(exc)[:200]})"


def _read_splits(df: pd.DataFrame, split_col: str, problems: _Problems) -> list[str | None]:
    """Each row's split from the manifest; one that is not a split name rejects the row."""
    splits: list[str | None] = [None] * len(df)
    for i, value in enumerate(df[split_col].tolist()):
        splits[i] = SPLIT_NAMES.get(str(value).strip().lower()) if value is not None else None
        if splits[i] is None:
            problems.add(
                i,
                split_col,
                f"split {value!r} is not train, val, validation or test",
                always_reject=True,
            )
    return splits


@dataclass
class _Columns:
    """Every row's converted cells, by column (a media column by stored part), before the
    rejected rows are dropped."""

    present: dict[str, np.ndarray] = field(default_factory=dict)
    #: Text, number and category values.
    values: dict[str, list[Any]] = field(default_factory=dict)
    #: Content hash of each row's file, by media part.
    digests: dict[str, list[str | None]] = field(default_factory=dict)
    # With ``hash_arrays`` (an artifact will record them), each array file is hashed while
    # the workers write the rows after it: the results come back in order, so the rows
    # before them are final. A rejected row means a smaller file is kept: hashing stops.
    followers: dict[str, arrays.FollowingSha256] = field(default_factory=dict)
    # Parts whose rows are the previous artifact's, unchanged: (old row of each row, old
    # file, its recorded SHA-256).
    linked: dict[str, tuple[list[int | None], Path, str]] = field(default_factory=dict)


def _decode_media(
    df: pd.DataFrame,
    schema: TableSchema,
    array_dir: Path,
    problems: _Problems,
    columns: _Columns,
    *,
    sources: Sources,
    reuse: dict[str, Reuse],
    workers: int,
    hash_arrays: bool,
    progress: Progress,
) -> None:
    """Decode each image, audio and video column into ``array_dir/<slug>.npy.all``, or,
    where its rows are all the previous artifact's, unchanged, link to the old files."""
    n = len(df)
    files = array_files(schema)
    kinds = {c.name: c.type for c in schema.input_columns()}
    media = [c for c in schema.manifest_columns() if c.type in MEDIA]
    present, digests, rejected = columns.present, columns.digests, problems.rejected
    followers = columns.followers
    total, done = n * len(media), 0
    for col in media:
        name, kind = col.name, col.type
        parts = media_parts(col, schema)
        cells = [None if c is None or str(c).strip() == "" else str(c) for c in df[name]]
        params = decode_params(kind, schema)
        old = reuse.get(name)
        for part in parts:
            present[part] = np.zeros(n, dtype=bool)
            digests[part] = [None] * n
        same = unchanged_rows(cells, rejected, sources, old)
        if same is not None:  # nothing to decode or copy: the old files serve
            _link_unchanged(parts, cells, same, old, sources, columns)  # type: ignore[arg-type]
            done += n
            progress("decoding media", done, total)
            continue
        outs = []
        for part in parts:
            shape, dtype = media_layout(kinds[part], schema)
            outs.append((array_dir / (Path(files[part]).name + ".all"), shape, dtype))
            arrays.create(outs[-1][0], n, shape, dtype)
            if hash_arrays:
                followers[part] = arrays.FollowingSha256(outs[-1][0])
        tasks = _decode_tasks(kind, params, outs, cells, rejected, sources, old)
        decoded = 0
        for results, written in parallel.ordered_map(decode_chunk, tasks, workers):
            for i, reason, filled, digest, sig in results:
                cell = cells[i]
                if digest is not None:
                    sources.hashed(cell, digest, sig)
                if reason is not None:
                    problems.add(i, name, reason, file=cell)
                elif cell is not None and i not in rejected:
                    for part, here in zip(parts, filled, strict=True):
                        present[part][i] = here
                        digests[part][i] = sources.hashes[cell] if here else None
            done += len(results)
            decoded += len(results)
            for part, spans in zip(parts, written, strict=True):
                if part in followers and not rejected:
                    followers[part].rows_done(decoded, spans)
            progress("decoding media", done, total)


def _link_unchanged(
    parts: list[str],
    cells: list[str | None],
    same: list[int | None],
    old: Reuse,
    sources: Sources,
    columns: _Columns,
) -> None:
    """Take a column's rows from the previous artifact's files, as ``unchanged_rows`` found."""
    for k, part in enumerate(parts):
        present, digests = columns.present[part], columns.digests[part]
        for i, a in enumerate(same):
            if a is not None and old.present[k][a]:
                present[i] = True
                digests[i] = sources.hashes[cells[i]]  # type: ignore[index]
        columns.linked[part] = (same, old.arrays[k], old.sha256[k])


def _decode_tasks(
    kind: str,
    params: dict[str, Any],
    outs: list[tuple[Path, tuple[int, ...], str]],
    cells: list[str | None],
    rejected: set[int],
    sources: Sources,
    old: Reuse | None,
) -> Iterator[tuple[Any, ...]]:
    """One ``decode_chunk`` task per chunk of rows: for each row, what to decode, what to
    copy from the previous artifact, or why not."""
    n = len(cells)
    old_rows, old_present = (old.rows, old.present) if old else ({}, [])
    for start in range(0, n, CHUNK):
        rows = []
        for i in range(start, min(start + CHUNK, n)):
            cell = cells[i]
            if i in rejected or cell is None:
                rows.append((i, None, None, None, None))
            elif cell in sources.problems:
                rows.append((i, None, None, sources.problems[cell], None))
            elif cell in sources.pending:  # hashed by the worker, then decoded
                rows.append((i, sources.paths[cell], None, None, None))
            else:
                a = old_rows.get(sources.hashes[cell])
                hit = None if a is None else (a, tuple(bool(f[a]) for f in old_present))
                rows.append((i, sources.paths[cell], hit, None, sources.signatures.get(cell)))
        # Only what the chunk needs travels to the worker, not the whole Reuse.
        yield kind, params, outs, start, rows, old.arrays if old else None, sources.root


def _convert_values(
    df: pd.DataFrame, schema: TableSchema, problems: _Problems, columns: _Columns
) -> None:
    """Parse the number, text and category columns; a cell that does not parse is a problem."""
    present = columns.present
    for col in schema.input_columns():
        name, kind = col.name, col.type
        if kind in MEDIA:
            continue
        present[name] = np.zeros(len(df), dtype=bool)
        converted: list[Any] = []
        for i, cell in enumerate(df[name].tolist()):
            try:
                if kind == "number":
                    value = parse_number(cell)
                elif kind == "text":
                    value = normalise_text(cell, schema.text_max_chars)
                else:
                    value = None if cell is None else str(cell).strip() or None
            except Exception as exc:  # noqa: BLE001 - any cell that does not convert
                problems.add(i, name, _cell_error(exc))
                value = None
            converted.append(value)
            present[name][i] = value is not None
        columns.values[name] = converted


def _build_table(
    schema: TableSchema,
    ids: list[str | None],
    targets: list[Any],
    splits: list[str | None],
    columns: _Columns,
    keep: np.ndarray,
    first_row: int,
    with_target: bool,
) -> pd.DataFrame:
    """The rows of ``keep``: ids, split and target, values, presence flags, file hashes."""
    import pandas as pd

    # Built as one dict, made a frame once: adding columns one by one is quadratic in them.
    data: dict[str, Any] = {
        "_row": keep + first_row,
        "_id": pd.Series([ids[i] for i in keep], dtype=object),
    }
    if with_target:
        data["_split"] = pd.Series([splits[i] for i in keep], dtype=object)
        dtype = np.float64 if schema.target.task == "regression" else np.int64
        data["_target"] = np.asarray([targets[i] for i in keep], dtype=dtype)
    values = columns.values
    for col in schema.input_columns():
        name = col.name
        if name in values:
            column = [values[name][i] for i in keep]
            data[name] = (
                np.asarray([np.nan if v is None else v for v in column], dtype=np.float64)
                if col.type == "number"
                else pd.Series(column, dtype=object)
            )
    for col in schema.input_columns():
        data[f"_present.{col.name}"] = columns.present[col.name][keep]
    for part, digests in columns.digests.items():
        # Content hash of each row's file: the key a rebuild reuses the decoded row by.
        data[f"_sha.{part}"] = pd.Series([digests[i] for i in keep], dtype=object)
    return pd.DataFrame(data)


def _store_arrays(
    array_dir: Path, schema: TableSchema, columns: _Columns, keep: np.ndarray, n: int
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Write each part's final ``array_dir/<slug>.npy``, the rows of ``keep``, and open it
    memory-mapped; returns those and the SHA-256 of each file already known (linked from
    the previous artifact, or hashed while written)."""
    files, followers = array_files(schema), columns.followers
    stored, hashed = {}, {}
    for part in columns.digests:
        final = array_dir / Path(files[part]).name
        if part in columns.linked:
            same, old_file, old_sha = columns.linked[part]
            rows = np.array([same[i] for i in keep], dtype=np.int64)
            if np.array_equal(rows, np.arange(arrays.row_count(old_file))):
                arrays.link_or_copy(old_file, final)
                hashed[final.name] = old_sha
            else:  # another column set rows aside while decoding: take the rest
                arrays.take(old_file, final, rows)
        else:
            if part in followers and len(keep) == n:  # the file written is the file kept
                hashed[final.name] = followers[part].hexdigest()
            arrays.select(array_dir / (final.name + ".all"), final, keep)
        stored[part] = np.load(final, mmap_mode="r", allow_pickle=False)
    return stored, hashed


def sort_rejects(rejects: list[dict[str, Any]], schema: TableSchema) -> None:
    """The order problems are found in: ids, target, split, then the inputs; by row."""
    first = [schema.id_column, schema.target.name, schema.split_column]
    order = {name: k for k, name in enumerate(first) if name}
    for k, col in enumerate(schema.input_columns()):
        order.setdefault(col.name, 3 + k)
    rejects.sort(key=lambda r: (order.get(r["column"], len(order) + 3), r["row"]))


def duplicate_ids(ids: list[str | None], first_row: int = 0) -> dict[int, str]:
    """Row -> reason, for every row whose id an earlier row already has."""
    first: dict[str, int] = {}
    found = {}
    for i, value in enumerate(ids):
        if value is not None and first.setdefault(value, i) != i:
            found[i] = f"duplicate id {value!r} (first at row {first_row + first[value]})"
    return found


def manifest_ids(df: pd.DataFrame, schema: TableSchema) -> list[str | None]:
    id_col = schema.id_column
    if not id_col or id_col not in df.columns:  # new rows for predict need no ids
        return [None] * len(df)
    return [None if v is None else str(v) for v in df[id_col]]


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
        n_test, n_val = _group_sizes(len(idx), val, test)
        splits[idx[:n_test]] = "test"
        splits[idx[n_test : n_test + n_val]] = "val"
    return splits.tolist()


def _group_sizes(rows: int, val: float, test: float) -> tuple[int, int]:
    """Test and val rows of a group (a class) of ``rows``; at least one stays for training."""
    n_test, n_val = int(round(rows * test)), int(round(rows * val))
    if n_test + n_val >= rows:  # tiny group
        n_test, n_val = min(n_test, max(rows - 1, 0)), 0
    return n_test, n_val


def planned_splits(df: pd.DataFrame, schema: TableSchema, cfg: PreprocessConfig) -> list[str]:
    """The splits the manifest's rows with a target would get, before any is decoded."""
    target = schema.target
    values = [v for v in df[target.name].tolist() if v is not None]
    if target.task == "classification":
        index = {c: i for i, c in enumerate(target.classes or [])}
        groups = np.array([index.get(label_of(v), -1) for v in values])
    else:
        groups = np.zeros(len(values))
    return assign_splits(groups, target.task, cfg.val_fraction, cfg.test_fraction, cfg.seed)


def check_splits(
    splits: list[str | None], cfg: PreprocessConfig, schema: TableSchema, df: pd.DataFrame | None
) -> list[str]:
    """Warnings about a split that gives no rows to val or test (train then never stops
    early, evaluate has nothing to score). When the target looks like the wrong column (a
    number read as classes, a label nearly every row has its own of) that is refused:
    a DataError before any file is decoded. ``df`` (the manifest) tells those apart."""
    effects = {
        "val": "train keeps its last epoch, with no early stopping",
        "test": "evaluate needs --split val, or a new labelled table",
    }
    if schema.split_column:
        empty = [name for name in ("val", "test") if name not in splits]
        return [
            f"the {schema.split_column!r} column gives no {name} rows: {effects[name]}"
            for name in empty
        ]
    asked = (("val", cfg.val_fraction), ("test", cfg.test_fraction))
    empty = [name for name, share in asked if share > 0 and name not in splits]
    if not empty:
        return []
    target = schema.target
    what = " and ".join(empty)
    rows = len(splits)
    if target.task == "classification":
        k = len(target.classes or [])
        need = _class_rows_needed(cfg, empty)
        why = (
            f"{k} classes in {rows} rows, and a class gives rows to {what} only with "
            f"{need} rows or more"
        )
        values = [] if df is None else [v for v in df[target.name].tolist() if v is not None]
        wrong = None
        if values and all(is_number(v) for v in values):
            wrong = "the target holds numbers: --task regression (or --task auto) predicts them"
        elif values and k > rows // 2:
            wrong = (
                f"nearly every value of {target.name!r} is different: is it the label? "
                f"The manifest has: {list(df.columns)}"  # type: ignore[union-attr]
            )
        if wrong:
            raise DataError(
                f"{cfg.manifest}: the split leaves no rows for {what}: {why}", hint=wrong
            )
    else:
        share = min(share for name, share in asked if name in empty)
        why = f"{rows} rows with a {share:g} share make no row"
    return [
        f"the split leaves no rows for {what} ({why}): "
        + "; ".join(effects[name] for name in empty)
        + f". Add rows, or set --{empty[0]}-fraction 0 to say so"
    ]


def _class_rows_needed(cfg: PreprocessConfig, splits: list[str]) -> int | str:
    """The fewest rows a class needs to give one to each of ``splits`` (val, test)."""
    for n in range(2, 10_000):
        n_test, n_val = _group_sizes(n, cfg.val_fraction, cfg.test_fraction)
        if all({"test": n_test, "val": n_val}[name] for name in splits):
            return n
    return "many"


def shard_rows(rows: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """Manifest rows [start, stop) of shard K of N: N blocks of equal size, in order."""
    if shard is None:
        return 0, rows
    k, count = shard
    return (k - 1) * rows // count, k * rows // count


@artifacts.exclusive
def run(
    cfg: PreprocessConfig,
    progress: Progress = no_progress,
    force: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Run the preprocess stage; returns a summary (also when already up to date)."""
    summary: dict[str, Any] = {"stage": "preprocess", "out": str(cfg.out)}
    root = (cfg.data_root or cfg.manifest.parent).resolve()
    previous = None if force else _read_record(cfg.out)
    try:
        manifest_sha: str | None = file_sha256(cfg.manifest)
    except OSError:
        manifest_sha = None  # reading the table below says why
    if previous and manifest_sha and _unchanged(cfg, root, previous, manifest_sha):
        return {**summary, "status": "up-to-date", **previous.summary}
    from mmcli.io.tables import read_table

    df = read_table(cfg.manifest)
    if len(df) == 0:
        raise DataError(f"{cfg.manifest}: the manifest has a header but no rows")
    inferred = infer_schema(df, cfg, root)  # from every row, so that all shards agree
    schema = inferred.schema
    if not schema.split_column:  # a wrong target is refused before any file is decoded
        check_splits(planned_splits(df, schema, cfg), cfg, schema, df)  # (warnings: finish's)
    # Said after the counts, in every summary of this artifact (up-to-date ones too).
    notes: dict[str, Any] = {"task_rule": inferred.task_rule, "warnings": inferred.warnings}
    shard = cfg.shard_numbers()
    start, stop = shard_rows(len(df), shard)
    part = df.iloc[start:stop].reset_index(drop=True)
    progress("hashing input files", 0, None)
    workers = parallel.resolve_workers(cfg.workers)
    # Paths in the record are relative to the artifact's folder: the answer is the same
    # from any current folder, and a moved work folder keeps its data.
    manifest = {
        "path": relative_to(cfg.manifest, cfg.out),
        "sha256": manifest_sha or file_sha256(cfg.manifest),
    }
    # When the parameters or the manifest changed, or there is no artifact yet, the stage
    # builds whatever the files hold: files the stat cache does not know are then hashed
    # by the decoding workers, not read in a serial pass first.
    stale = force or _surely_stale(previous, cfg.identity(), manifest["sha256"])
    cells = media_cells(part, schema)
    sources = hash_sources(cells, root, cache_path(cfg.out), workers, lazy=stale)
    key = "" if stale else _key(cfg, manifest["sha256"], sources.fingerprint())
    params = cfg.identity()
    if done := staleness.answer(cfg.out, key, params, summary, force=stale, dry_run=dry_run):
        return done
    return _build(
        cfg, part, (start, stop), len(df), schema, root, manifest, sources, force, summary,
        notes, progress,
    )  # fmt: skip


def _build(
    cfg: PreprocessConfig,
    part: pd.DataFrame,
    rows: tuple[int, int],
    total: int,
    schema: TableSchema,
    root: Path,
    manifest: dict[str, str],
    sources: Sources,
    force: bool,
    summary: dict[str, Any],
    notes: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    """Decode and check ``part``, manifest rows ``rows`` of ``total`` (a shard's, or all),
    into the artifact."""
    start, stop = rows
    shard = cfg.shard_numbers()
    workers = parallel.resolve_workers(cfg.workers)
    with artifacts.Builder(
        cfg.out,
        stage="preprocess",
        params=cfg.identity(),
        inputs={"manifest": manifest},
        key="",  # set below, once every file is hashed
        seed=cfg.seed,
    ) as build:
        (build.dir / "arrays").mkdir()
        prepared = prepare(
            part,
            schema,
            root,
            build.dir / "arrays",
            on_error=cfg.on_error,
            progress=progress,
            sources=sources,
            workers=workers,
            reuse={} if force else previous_rows(cfg.out, schema),
            first_row=start,
            hash_arrays=True,
        )
        build.hashed.update({f"arrays/{name}": d for name, d in prepared.hashed.items()})
        sources.finish(workers)  # files of rows set aside before decoding, and the cache
        build.inputs["files"] = sources.fingerprint()
        build.key = _key(cfg, manifest["sha256"], build.inputs["files"])
        table, rejects = prepared.table, prepared.rejects
        if shard is None:
            notes["warnings"] += finish(table, rejects, cfg, schema, total)
        summary.update(describe(table, rejects, schema, stop - start, cfg.out))
        summary.update({k: v for k, v in notes.items() if v})
        if shard is not None:
            summary["shard"] = f"{shard[0]}/{shard[1]}"
            build.info["shard"] = {"index": shard[0], "count": shard[1], "rows": [start, stop]}
        write_tables(build.dir, table, rejects, sources.table())
        build.info.update(
            {
                "schema": schema.model_copy(update={"arrays": array_files(schema)}),
                "summary": lean_summary(summary),
                "paths": {"data_root": relative_to(root, cfg.out)},
            }
        )
    return summary


def _key(cfg: PreprocessConfig, manifest_sha: str, files: dict[str, Any]) -> str:
    # Paths stay out of the key: moving a data folder does not make its artifacts stale.
    return artifacts.cache_key(
        "preprocess", cfg.identity(), {"manifest": manifest_sha, "files": files}
    )


def _unchanged(
    cfg: PreprocessConfig, root: Path, record: PreprocessRecord, manifest_sha: str
) -> bool:
    """Whether ``record``, the artifact at ``cfg.out``, is up to date, found without
    reading the manifest.

    With the manifest's bytes, its format and the parameters as recorded, the manifest
    names the files that the artifact's ``files.parquet`` lists: their stat signatures
    against the cache decide, and neither pandas, the schema nor a decoder is needed.
    False when that cannot tell (a file changed or is not in the cache): the full check
    decides.
    """
    if record.inputs.manifest is None:
        return False
    built_from = Path(record.inputs.manifest.path)
    # The same bytes make the same table only when read as the same format, which the
    # file name decides (a CSV copied to a .tsv name no longer parses).
    if built_from.suffix.lower() != cfg.manifest.suffix.lower():
        return False
    if _surely_stale(record, cfg.identity(), manifest_sha):
        return False
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # ParquetFile, not read_table: that one loads pyarrow's dataset layer, and pandas.
        files = pq.ParquetFile(cfg.out / "files.parquet").read(columns=["file"])
        cells = [c for c in files.column("file").to_pylist() if isinstance(c, str)]
    except (OSError, ValueError, KeyError, pa.ArrowException):  # KeyError: no such column
        return False
    sources = hash_sources(cells, root, cache_path(cfg.out), lazy=True)
    if sources.pending:
        return False
    key = _key(cfg, manifest_sha, sources.fingerprint())
    return staleness.current(cfg.out, key) is not None


def _read_record(out: Path) -> PreprocessRecord | None:
    """The record of the preprocess artifact at ``out``, if there is one this mmcli reads."""
    try:
        record = artifacts.read_record(out / artifacts.RECORD_NAME)
    except MmcliError:
        return None
    return record if isinstance(record, PreprocessRecord) else None


def _surely_stale(
    record: PreprocessRecord | None, params: dict[str, Any], manifest_sha: str
) -> bool:
    """True when the artifact of ``record`` must be rebuilt whatever the media files hold."""
    manifest = record.inputs.manifest if record else None
    return manifest is None or record.params != params or manifest.sha256 != manifest_sha  # type: ignore[union-attr]


def finish(
    table: pd.DataFrame,
    rejects: list[dict[str, Any]],
    cfg: PreprocessConfig,
    schema: TableSchema,
    rows: int,
) -> list[str]:
    """What needs every row: refuse an empty or too-rejected result, assign the splits.
    Returns warnings about the splits (a split column without val or test rows)."""
    if len(table) == 0:
        raise DataError(
            f"{cfg.manifest}: every row was rejected",
            hint=f"first reason: {rejects[0]['reason']}" if rejects else None,
        )
    _check_max_errors(cfg, rows, rows - len(table), rejects)
    if not schema.split_column:
        table["_split"] = assign_splits(
            table["_target"].to_numpy(),
            schema.target.task,
            cfg.val_fraction,
            cfg.test_fraction,
            cfg.seed,
        )
    if not (table["_split"] == "train").any():
        raise DataError(f"{cfg.manifest}: no rows in the train split")
    return check_splits(table["_split"].tolist(), cfg, schema, None)


def describe(
    table: pd.DataFrame, rejects: list[dict[str, Any]], schema: TableSchema, rows: int, out: Path
) -> dict[str, Any]:
    counts = {"manifest": rows, "kept": len(table), "rejected": rows - len(table)}
    if table["_split"].notna().all():
        counts.update({s: int((table["_split"] == s).sum()) for s in ("train", "val", "test")})
    summary: dict[str, Any] = {
        "status": "built",
        "rows": counts,
        "problems": len(rejects),
    }
    if rejects:
        first = [
            f"row {r['row']}, {r['column']}: {r['reason']}"
            + ("" if r["action"] == "rejected" else f" ({r['action']})")
            for r in rejects[:3]
        ]
        more = len(rejects) - len(first)
        summary["first problems"] = first + ([f"... and {more} more"] if more else [])
        summary["all problems"] = f"{out}/rejected.parquet (mmcli inspect {out} lists them)"
    summary["columns"] = {c.name: c.type for c in schema.columns}
    summary["task"] = schema.target.task
    return summary


def write_tables(
    folder: Path, table: pd.DataFrame, rejects: list[dict[str, Any]], files: pd.DataFrame
) -> None:
    import pandas as pd

    rejected = pd.DataFrame(rejects, columns=REJECTED_COLUMNS).astype({"row": np.int64})
    for name, frame in (("rows", table), ("rejected", rejected), ("files", files)):
        # Text as plain Python objects, however the table was made (built here, or read
        # back from shards by `merge`, which gives pandas' string dtype): the same bytes.
        text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])]
        frame.astype({c: object for c in text}).to_parquet(folder / f"{name}.parquet", index=False)


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
