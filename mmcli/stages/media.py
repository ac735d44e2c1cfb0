"""Media cells of a manifest: where their files are and what they hash to, what a previous
artifact already holds for them, and the worker that decodes a chunk of them.

Used by preprocess (and predict, through it). A media cell names an image, audio or video
file; its SHA-256 is the key under which a rebuild reuses the decoded row.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmcli import __version__, artifacts, parallel
from mmcli.artifacts import arrays
from mmcli.artifacts.filecache import (
    SMALL_FILE,
    FileHashes,
    hash_many,
    read_and_hash_fd,
    signature,
)
from mmcli.artifacts.hashing import json_sha256
from mmcli.artifacts.records import Column, TableSchema
from mmcli.errors import MmcliError
from mmcli.io.audio import AudioRejected, load_audio
from mmcli.io.images import ImageRejected, load_image
from mmcli.io.paths import PathRejected, open_inside, reopen_path, resolve_file
from mmcli.io.video import VideoRejected, load_video

if TYPE_CHECKING:  # pandas loads only where a table is built: an up-to-date check needs none
    import pandas as pd

MEDIA = ("image", "audio", "video")
#: Rows per decoding task: enough to amortise a task's overhead, few enough to balance cores.
CHUNK = 64
#: Kinds decoded from the bytes the worker read to hash them, files up to READ_WHOLE_MAX.
#: Images: Pillow decoding from memory ran 15% faster than from the path, and the file is
#: opened once. Audio stays on paths: libsndfile reading Python memory through callbacks
#: ran 15% slower than its own open. Video demuxing reads from the path.
READ_WHOLE = ("image",)
READ_WHOLE_MAX = 64 << 20


def media_layout(kind: str, schema: TableSchema) -> tuple[tuple[int, ...], str]:
    """(shape of one row, dtype) of a media column's stored array."""
    size = schema.image_size
    if kind == "image":
        return (size, size, 3), "uint8"
    if kind == "video":
        return (schema.video_frames, size, size, 3), "uint8"
    return (int(round(schema.audio_seconds * schema.sample_rate)),), "float32"


def decode_params(kind: str, schema: TableSchema) -> dict[str, Any]:
    """What a decoded value depends on besides the file's bytes (the per-row cache key)."""
    sound = {"sample_rate": schema.sample_rate, "seconds": schema.audio_seconds}
    # The budgets are part of the key: a row decoded under a larger one is decoded again
    # (and may be refused) under a smaller one.
    if kind == "image":
        return {
            "type": kind,
            "image_size": schema.image_size,
            "max_megapixels": schema.image_max_megapixels,
        }
    if kind == "video":
        return {
            "type": kind,
            "image_size": schema.image_size,
            "frames": schema.video_frames,
            "max_seconds": schema.video_max_seconds,
            "max_megapixels": schema.video_max_decoded_megapixels,
            **sound,
        }
    return {
        "type": kind,
        **sound,
        "max_seconds": schema.audio_max_seconds,
        "max_decoded_mb": schema.audio_max_decoded_mb,
    }


def decode_cell(
    kind: str, source: str | Path | bytes, params: dict[str, Any]
) -> tuple[np.ndarray, ...]:
    """One media file (path, or bytes read already) decoded: (value,) or, for a video,
    (frames, soundtrack or None)."""
    source = source if isinstance(source, bytes) else Path(source)
    if kind == "image":
        return (load_image(source, params["image_size"], params["max_megapixels"]),)
    if kind == "audio":
        audio = load_audio(
            source,
            params["sample_rate"],
            params["seconds"],
            params["max_decoded_mb"],
            params["max_seconds"],
        )
        return (audio,)
    assert not isinstance(source, bytes), "video is decoded from its path"
    return load_video(
        source,
        params["frames"],
        params["image_size"],
        params["sample_rate"],
        params["seconds"],
        params["max_seconds"],
        params["max_megapixels"],
    )


def media_parts(col: Column, schema: TableSchema) -> list[str]:
    """The stored columns one manifest column fills: itself, and a video's soundtrack."""
    derived = [c.name for c in schema.input_columns() if c.source == col.name]
    return [col.name, *derived]


@dataclass
class Sources:
    """Each distinct media cell resolved inside the data root and hashed, or why not.

    ``pending`` holds files not hashed yet (cell -> stat signature): on a build that must
    happen anyway, the decoding workers hash them, so no serial pass reads them first.
    """

    paths: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    pending: dict[str, list[int]] = field(default_factory=dict)
    #: The stat signature each hash was found under: a worker that opens the file to
    #: decode it and finds another signature hashes what it opened instead.
    signatures: dict[str, list[int]] = field(default_factory=dict)
    store: FileHashes | None = None
    #: The data root (real path) every file must still lie in when it is opened.
    root: str = ""

    def fingerprint(self) -> dict[str, Any]:
        every = {**{c: f"unreadable: {r}" for c, r in self.problems.items()}, **self.hashes}
        return {"count": len(every), "sha256": json_sha256(every)}

    def table(self) -> pd.DataFrame:
        """One row per distinct file cell, sorted: what the artifact's inputs were."""
        import pandas as pd

        every = {**{c: f"unreadable: {r}" for c, r in self.problems.items()}, **self.hashes}
        cells = sorted(every)
        return pd.DataFrame(
            {"file": pd.Series(cells, dtype=object), "sha256": [every[c] for c in cells]}
        )

    def hashed(self, cell: str, digest: str, sig: list[int] | None = None) -> None:
        """Record a hash found for a file (unreadable files become problems); ``sig``: the
        stat signature of the file it was read from, when the reader had it."""
        sig = sig or self.pending.pop(cell, None)
        self.pending.pop(cell, None)
        if cell not in self.paths:
            return
        if digest.startswith("unreadable: "):
            self.problems[cell] = f"cannot read file: {digest.removeprefix('unreadable: ')}"
            del self.paths[cell]
            return
        self.hashes[cell] = digest
        if sig is not None:
            self.signatures[cell] = sig
            if self.store is not None:
                self.store.record(self.paths[cell], sig, digest)

    def finish(self, workers: int = 1) -> None:
        """Hash whatever is still pending, and save the stat cache."""
        cells = list(self.pending)
        paths = [self.paths[c] for c in cells]
        chunks = [paths[i : i + 256] for i in range(0, len(paths), 256)]
        found = (d for part in parallel.ordered_map(hash_many, chunks, workers) for d in part)
        for cell, digest in zip(cells, found, strict=True):
            self.hashed(cell, digest)
        if self.store is not None:
            self.store.save()


def media_cells(df: pd.DataFrame, schema: TableSchema) -> list[str]:
    """Every distinct file cell of a manifest's image, audio and video columns."""
    cells: dict[str, None] = {}
    for col in schema.manifest_columns():
        if col.type in MEDIA:
            for cell in df[col.name].tolist():
                if cell is not None and str(cell).strip() != "":
                    cells[str(cell)] = None
    return list(cells)


def hash_sources(
    cells: Iterable[str],
    root: Path,
    cache: Path | None = None,
    workers: int = 1,
    lazy: bool = False,
) -> Sources:
    """Resolve and hash the media files ``cells`` name (what decides a rerun).

    Files whose stat signature matches the cache beside the output are not read. With
    ``lazy``, the others are left pending for the decoding workers to hash.
    """
    sources = Sources(store=FileHashes(cache), root=str(root))
    for cell in cells:
        if cell in sources.paths or cell in sources.problems:
            continue
        try:
            path, st = resolve_file(cell, root)
        except PathRejected as exc:
            sources.problems[cell] = str(exc)
            continue
        sources.paths[cell] = path  # str: a third the size of a Path
        sig, digest = sources.store.lookup(path, st)  # type: ignore[union-attr]
        if sig is None or digest is None:
            sources.pending[cell] = sig  # type: ignore[assignment]
            if sig is None:  # cannot even be stat'ed
                sources.hashed(cell, digest or "unreadable: cannot stat")
        else:
            sources.hashes[cell] = digest
            sources.signatures[cell] = sig
    if not lazy:
        sources.finish(workers)
    return sources


@dataclass
class Reuse:
    """Rows of a previous artifact, found by the content hash of their file.

    ``arrays``, ``sha256`` (of each file, as recorded) and ``present`` hold each stored
    part (a video has its frames and its soundtrack, which a clip may lack); ``shas`` is
    the content hash of each old row's file (None where it had none).
    """

    rows: dict[str, int]
    arrays: list[Path]
    present: list[np.ndarray]
    shas: list[str | None]
    sha256: list[str]


def previous_rows(out: Path, schema: TableSchema) -> dict[str, Reuse]:
    """For each media column, what the artifact already at ``out`` can give without decoding.

    A row is reused when its file has the same SHA-256 and the column is decoded with the
    same parameters by the same mmcli version: the per-sample cache is the previous output.
    """
    try:
        old = artifacts.load(out, stages=("preprocess",), shards_ok=True)
        if old.record.mmcli_version != __version__:
            return {}
        old_schema: TableSchema = old.record.table
        table = old.table("rows.parquet")
    except MmcliError:
        return {}
    reuse = {}
    for col in schema.manifest_columns():
        name, kind = col.name, col.type
        old_col = next((c for c in old_schema.manifest_columns() if c.name == name), None)
        if kind not in MEDIA or old_col is None or old_col.type != kind:
            continue
        parts = media_parts(col, schema)
        if (
            decode_params(kind, old_schema) != decode_params(kind, schema)
            or media_parts(old_col, old_schema) != parts
            or f"_sha.{name}" not in table.columns
        ):
            continue
        try:
            names = [old_schema.arrays[part] for part in parts]
            files = [old.array_file(name) for name in names]
            recorded = [old.record.outputs[name].sha256 for name in names]
        except (MmcliError, KeyError):
            continue
        shas = table[f"_sha.{name}"].tolist()
        rows = {}
        for position, digest in enumerate(shas):
            if digest is not None:
                rows.setdefault(digest, position)
        flags = [table[f"_present.{part}"].to_numpy(dtype=bool) for part in parts]
        reuse[name] = Reuse(rows, files, flags, shas, recorded)
    return reuse


def unchanged_rows(
    cells: list[str | None], rejected: set[int], sources: Sources, old: Reuse | None
) -> list[int | None] | None:
    """Old row of each row when a column's rows to keep are the old artifact's rows, all of
    them and in order, with the same content: its array files are then the old files,
    linked instead of copied. None otherwise (or when any file is still to hash).
    """
    if old is None:
        return None
    mapping: list[int | None] = []
    k = 0
    for i, cell in enumerate(cells):
        if i in rejected:
            mapping.append(None)
            continue
        if cell is not None and cell not in sources.hashes:
            return None  # unreadable, outside the folder, or not hashed yet
        digest = None if cell is None else sources.hashes[cell]
        if k >= len(old.shas) or old.shas[k] != digest:
            return None
        mapping.append(k)
        k += 1
    return mapping if k == len(old.shas) else None


_BUFFERS: dict[tuple, np.ndarray] = {}


def _buffer(part: int, rows: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """A block for one chunk, reused from one chunk to the next within a process; it holds
    the previous chunk's rows (``decode_chunk`` zeroes the rows it does not fill).

    Fresh memory for every chunk costs a page fault per 4 KiB, which for audio is more
    than the copy itself; a kept buffer is faulted in once.
    """
    key = (part, rows, shape, dtype)
    if key not in _BUFFERS:
        for stale in [k for k in _BUFFERS if k[0] == part]:
            del _BUFFERS[stale]  # one shape per part at a time: bounded memory
        _BUFFERS[key] = np.zeros((rows, *shape), dtype=dtype)
    return _BUFFERS[key]


def decode_chunk(
    task: tuple[Any, ...],
) -> tuple[list[tuple[int, str | None, tuple, str | None, Any]], list[list[tuple[int, int]]]]:
    """Decode (or copy from a previous artifact) one chunk of a column into its array files.

    Runs in a worker process. ``rows`` holds (position, path, reused, refusal, expected):
    ``reused`` is (row of the previous artifact's files ``old_files``, which parts it
    fills) or None; ``expected`` the stat signature the file's known hash goes with (None:
    no hash yet). The chunk's positions are consecutive, so each part's block is written
    with one call. Returns per row: (position, refusal or None, which parts hold a value,
    the file's hash and stat signature when this worker computed it); and per part, the
    byte ranges of its file written, in order (the rest of the chunk's rows are holes).
    """
    kind, params, outs, start, rows, old_files, root = task
    blocks = [
        _buffer(k, len(rows), tuple(shape), dtype) for k, (_, shape, dtype) in enumerate(outs)
    ]
    filled = {i: row[2][1] for i, row in enumerate(rows) if row[2] is not None}
    reused = [(i, row[2][0]) for i, row in enumerate(rows) if row[2] is not None]
    results: list[tuple[int, str | None, tuple, str | None, list[int] | None]] = []
    filled_rows: list[set[int]] = [set() for _ in blocks]  # rows of each block decoded into
    for i, (position, path, at, refusal, expected) in enumerate(rows):
        if refusal is not None:
            results.append((position, refusal, (), None, None))
            continue
        if path is None or at is not None:
            results.append((position, None, filled.get(i, ()), None, None))
            continue
        try:
            values, digest, sig = _open_and_decode(kind, path, root, expected, params)
        except (ImageRejected, AudioRejected, VideoRejected, PathRejected) as exc:
            results.append((position, str(exc), (), None, None))
            continue
        except OSError as exc:
            results.append((position, f"cannot read file: {exc.strerror or exc}", (), None, None))
            continue
        except Exception as exc:  # noqa: BLE001 - a decoder's failure on one file is that row's
            reason = f"cannot decode {kind}: {type(exc).__name__}: {str(exc)[:200]}"
            results.append((position, reason, (), None, None))
            continue
        for k, value in enumerate(values[: len(blocks)]):
            if value is not None:
                blocks[k][i] = value
                filled_rows[k].add(i)
        # A part beyond what was stored here (a video's ignored soundtrack) is just absent.
        here = [value is not None for value in values][: len(blocks)]
        flags = tuple(here + [False] * (len(blocks) - len(here)))
        results.append((position, None, flags, digest, sig))
    # Reused rows are copied file to file, runs of consecutive rows at a time; the decoded
    # rows are written around them (zero tails, such as audio padding, left as holes).
    taken = {i for i, _ in reused}
    written: list[list[tuple[int, int]]] = []
    for (out, _, _), block, k in zip(outs, blocks, range(len(outs)), strict=True):
        for i in set(range(len(rows))) - filled_rows[k] - taken:
            block[i] = 0  # absent or refused: a row of zeros (a hole, if long enough)
        spans = []
        for first, count in _runs([(i, None) for i in range(len(rows)) if i not in taken]):
            spans += arrays.write_new_rows(out, start + first, block[first : first + count])
        for (first, old_first), count in _runs(reused):
            spans += arrays.copy_rows(old_files[k], old_first, out, start + first, count)
        written.append(sorted(spans))
    return results, written


def _open_and_decode(
    kind: str, path: str, root: str, expected: list[int] | None, params: dict[str, Any]
) -> tuple[tuple[np.ndarray, ...], str | None, list[int] | None]:
    """Open a media file once, still inside ``root``, and decode what was opened.

    The file is hashed from the same descriptor when no hash is known for it yet
    (``expected`` None) or when it is not the file that was hashed (another stat
    signature): the hash recorded always matches the bytes decoded. Returns the decoded
    value(s), and the hash and signature when this call hashed it; an unreadable file
    raises OSError, a file gone outside the root PathRejected.
    """
    fd = open_inside(path, Path(root))
    try:
        sig = signature(os.fstat(fd))
        data, digest = None, None
        whole = kind in READ_WHOLE
        if expected is None or sig != expected:
            data, digest = read_and_hash_fd(fd, READ_WHOLE_MAX if whole else SMALL_FILE)
            if digest.startswith("unreadable: "):
                raise OSError(digest.removeprefix("unreadable: "))
        elif whole and os.fstat(fd).st_size <= READ_WHOLE_MAX:
            data = os.pread(fd, READ_WHOLE_MAX + 1, 0)
        source = data if whole and data is not None else reopen_path(fd)
        return decode_cell(kind, source, params), digest, sig if digest else None
    finally:
        os.close(fd)


def _runs(pairs: list[tuple[int, int | None]]) -> list[tuple[Any, int]]:
    """Group (offset, old row) pairs that both go up by one into (first pair, length) runs."""
    runs: list[tuple[Any, int]] = []
    for i, a in pairs:
        if runs:
            (i0, a0), n = runs[-1]
            if i == i0 + n and (a is None or a == a0 + n):
                runs[-1] = ((i0, a0), n + 1)
                continue
        runs.append(((i, a), 1))
    return [((i0 if a0 is None else (i0, a0)), n) for (i0, a0), n in runs]
