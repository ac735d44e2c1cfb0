"""Row-addressed ``.npy`` files: written and read a block of rows at a time, in bounded memory.

A stage that maps over rows creates its output array at full size first (``create``),
then any process writes rows at their offsets (``write_rows``, or ``write_new_rows``, which
leaves zero tails such as audio padding as holes); nothing holds the whole array. Reads
copy just the rows asked for (``read_rows``) through a short-lived memory map, so the
pages they touch do not stay in the reader's resident memory. The files are plain
``.npy``: ``np.load(path, mmap_mode="r")`` opens them, no pickle involved.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

#: Bytes moved per block when copying rows between files.
BLOCK_BYTES = 32 << 20
#: Bytes read at a time to hash a file being written: small, so the parent stays small.
HASH_BLOCK_BYTES = 1 << 20
#: Zero tails shorter than a page are written: leaving them out saves nothing.
HOLE_MIN = 4096
_ZEROS = memoryview(bytes(HASH_BLOCK_BYTES))


def create(path: Path, rows: int, shape: tuple[int, ...], dtype: np.dtype | str) -> None:
    """A zero-filled (rows, *shape) array file."""
    dtype = np.dtype(dtype)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": dtype.str, "fortran_order": False, "shape": (rows, *shape)}
        )
        size = f.tell() + rows * int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        # Sparse, not posix_fallocate: on ext4 a write into preallocated (unwritten)
        # blocks costs an extent conversion, and the writes ran 4x slower (0.6 vs 2.4 GiB/s).
        f.truncate(size)


def _layout(path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    """(data offset, shape, dtype) from a ``.npy`` header, refusing one that does not
    describe plain row-major numbers."""
    with open(path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        fmt = np.lib.format
        read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, fortran, dtype = read(f)  # the header only, not the data
        if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
            raise ValueError(f"not an array of numbers (dtype {dtype.str})")
        if len(shape) == 0:
            raise ValueError("a single value, not rows")
        if fortran and len(shape) > 1:
            # Rows are read and written at byte offsets: column-major bytes would be
            # taken for rows, silently transposed.
            raise ValueError(f"stored column-major (fortran order), shape {shape}")
        return f.tell(), shape, dtype


def layout(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of an array file from its header, checked to be held whole by the
    file (a forged huge shape is caught here, not by a read past the end); ValueError for
    one no reader takes."""
    offset, shape, dtype = _layout(path)
    need = offset + math.prod(shape) * dtype.itemsize  # Python ints: no int64 wrap-around
    size = os.stat(path).st_size
    if need > size:
        raise ValueError(
            f"its header says shape {shape} of {dtype}, {need:,} bytes; it holds {size:,}"
        )
    return shape, dtype


def mismatch(
    shape: tuple[int, ...],
    dtype: np.dtype,
    rows: int | None = None,
    row_shape: tuple[int, ...] | None = None,
    want_dtype: np.dtype | str | None = None,
) -> str | None:
    """How an array's header differs from what its record says (rows, row shape, dtype),
    or None when it matches."""
    if row_shape is not None and tuple(shape[1:]) != tuple(row_shape):
        return f"rows of shape {tuple(shape[1:])}, the record says {tuple(row_shape)}"
    if rows is not None and shape[0] != rows:
        return f"{shape[0]:,} rows, its rows.parquet has {rows:,}"
    if want_dtype is not None and np.dtype(dtype) != np.dtype(want_dtype):
        return f"dtype {np.dtype(dtype)}, expected {np.dtype(want_dtype)}"
    return None


class FollowingSha256:
    """SHA-256 of an array file whose rows are written front to back, a chunk at a time.

    ``rows_done(n)`` hashes the bytes up to row ``n`` once they are final, so the hash is
    taken while later rows are still being written instead of rereading the whole file
    at the end.
    """

    def __init__(self, path: Path):
        self.path = path
        self.offset, shape, dtype = _layout(path)
        self.rows = shape[0]
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self.hashed = 0  # bytes
        self.sha = hashlib.sha256()

    def rows_done(self, rows: int, written: list[tuple[int, int]] | None = None) -> None:
        """Hash up to row ``rows``.

        ``written``: the [first, end) byte ranges of those rows written since the last
        call, when the writer knows them (``write_new_rows`` and ``copy_rows`` return
        them); every other byte of those rows reads as zero. Without it the file is asked
        where its data is: on ext4 that scans the page cache while the pages are still
        dirty, seconds for a freshly written file of 20,000 extents.
        """
        end = self.offset + rows * self.row_bytes
        with open(self.path, "rb") as f:
            if os.fstat(f.fileno()).st_size < end:
                raise OSError(f"{self.path}: shorter than its header says")
            if written is None:
                spans = _data_spans(f.fileno(), self.hashed, end)
            else:  # the header is data too
                spans = [(min(self.hashed, self.offset), self.offset), *sorted(written)]
                if max(stop for _, stop in spans) > end:
                    raise ValueError(f"{self.path}: a range written lies past row {rows}")
            for first, stop in spans:
                if stop <= self.hashed:
                    continue
                self._zeros(first)
                f.seek(self.hashed)
                while self.hashed < stop:
                    block = f.read(min(stop - self.hashed, HASH_BLOCK_BYTES))
                    if not block:
                        raise OSError(f"{self.path}: shrank while being hashed")
                    self.sha.update(block)
                    self.hashed += len(block)
            self._zeros(end)

    def _zeros(self, stop: int) -> None:
        """Hash a hole up to ``stop``: it reads as zeros, so its pages need not be read."""
        while self.hashed < stop:
            n = min(stop - self.hashed, len(_ZEROS))
            self.sha.update(_ZEROS[:n])
            self.hashed += n

    def hexdigest(self) -> str:
        self.rows_done(self.rows)
        return self.sha.hexdigest()


def write_rows(path: Path, start: int, block: np.ndarray) -> None:
    """Write ``block`` as rows ``start, start+1, ...`` of an existing array file."""
    offset, shape, dtype = _layout(path)
    data = np.ascontiguousarray(block, dtype=dtype)
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, memoryview(data.reshape(-1)).cast("B"), offset + start * row_bytes)
    finally:
        os.close(fd)


def write_new_rows(path: Path, start: int, block: np.ndarray) -> list[tuple[int, int]]:
    """``write_rows`` into rows of a ``create``d file that nothing has written yet.

    Unwritten bytes read as zero, so a row's trailing zeros (audio padding, the row of an
    absent value) are left unwritten, as holes: they cost neither a write nor disk space,
    and the file reads exactly as if they had been written. Returns the [first, end) byte
    ranges of the file written, in order.
    """
    offset, shape, dtype = _layout(path)
    data = np.ascontiguousarray(block, dtype=dtype)
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    flat = memoryview(data.reshape(-1)).cast("B")
    used = _used_bytes(data.reshape(len(data), -1).view(np.uint8))
    spans: list[list[int]] = []  # [first, end) bytes of the block to write
    for i, count in enumerate(used.tolist()):
        begin = i * row_bytes
        end = begin + (count if row_bytes - count >= HOLE_MIN else row_bytes)
        if spans and spans[-1][1] == begin:
            spans[-1][1] = end
        elif end > begin:
            spans.append([begin, end])
    base = offset + start * row_bytes
    fd = os.open(path, os.O_WRONLY)
    try:
        for first, end in spans:
            os.pwrite(fd, flat[first:end], base + first)
    finally:
        os.close(fd)
    return [(base + first, base + end) for first, end in spans]


def _used_bytes(rows: np.ndarray) -> np.ndarray:
    """Per row of ``rows`` (2-D, uint8): its bytes up to and including its last non-zero
    word (0 for a row of zeros)."""
    width = next(w for w in (8, 4, 2, 1) if rows.shape[1] % w == 0)
    words = rows.view(f"u{width}")
    used = np.full(len(words), rows.shape[1], dtype=np.int64)
    if len(words) and words.shape[1] and not words[:, -1].all():  # some rows end in zeros
        nonzero = words[:, ::-1] != 0
        tail = nonzero.argmax(axis=1)  # how many words at the end of each row are zero
        ends = (words.shape[1] - tail) * width
        used = np.where(nonzero[np.arange(len(words)), tail], ends, 0)
    return used


def copy_rows(
    src: Path, src_row: int, dst: Path, dst_row: int, count: int
) -> list[tuple[int, int]]:
    """Copy ``count`` consecutive rows between two files of the same row layout, into rows
    of ``dst`` that nothing has written yet (see ``write_new_rows``).

    The kernel copies (``copy_file_range``): the bytes never pass through this process,
    and a file system that can share blocks (XFS, Btrfs) shares them. Holes in ``src``
    (zero tails ``write_new_rows`` left out) are skipped, so they stay holes. Returns the
    [first, end) byte ranges of ``dst`` written, in order.
    """
    src_offset, src_shape, dtype = _layout(src)
    dst_offset, _, _ = _layout(dst)
    row_bytes = int(np.prod(src_shape[1:], dtype=np.int64)) * dtype.itemsize
    src_at, dst_at = src_offset + src_row * row_bytes, dst_offset + dst_row * row_bytes
    written = []
    with open(src, "rb") as fin, open(dst, "r+b") as fout:
        for first, end in _data_spans(fin.fileno(), src_at, src_at + count * row_bytes):
            _copy_range(fin, fout, first, dst_at + first - src_at, end - first)
            written.append((dst_at + first - src_at, dst_at + end - src_at))
    return written


def _data_spans(fd: int, first: int, end: int) -> Iterable[tuple[int, int]]:
    """The [first, end) byte ranges of a file between ``first`` and ``end`` that hold data,
    not holes (all of it where the system cannot tell)."""
    if not hasattr(os, "SEEK_DATA"):
        yield first, end
        return
    at = first
    while at < end:
        try:
            data = os.lseek(fd, at, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after ``at``
            return
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole
        at = hole


def _copy_range(fin: Any, fout: Any, src_at: int, dst_at: int, todo: int) -> None:
    while todo > 0:
        try:
            done = os.copy_file_range(fin.fileno(), fout.fileno(), todo, src_at, dst_at)
        except (AttributeError, OSError):  # not Linux, or across file systems
            done = 0
        if done <= 0:  # fall back to a plain copy for the rest
            fin.seek(src_at)
            fout.seek(dst_at)
            fout.write(fin.read(todo))
            return
        todo, src_at, dst_at = todo - done, src_at + done, dst_at + done


def read_rows(path: Path, index: np.ndarray | slice) -> np.ndarray:
    """A copy of rows ``index`` of an array file (the map is closed before returning)."""
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    try:
        return np.array(mapped[index])
    finally:
        mapped._mmap.close()  # type: ignore[union-attr]  # free the pages now, not at GC


def row_count(path: Path) -> int:
    return _layout(path)[1][0]


def row_shape(path: Path) -> tuple[int, ...]:
    return tuple(_layout(path)[1][1:])


def select(src: Path, dst: Path, keep: np.ndarray) -> None:
    """Write rows ``keep`` (ascending) of ``src`` to a new file ``dst``, block by block;
    ``src`` is removed."""
    if len(keep) == row_count(src):
        os.replace(src, dst)
        return
    take(src, dst, keep)
    os.unlink(src)


def take(src: Path, dst: Path, rows: np.ndarray) -> None:
    """Write rows ``rows`` of ``src`` to a new file ``dst``, block by block."""
    _, shape, dtype = _layout(src)
    create(dst, len(rows), shape[1:], dtype)
    for start, block in _blocks(len(rows), shape, dtype):
        write_rows(dst, start, read_rows(src, rows[start : start + block]))


def link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` as the same bytes as ``src``: a hard link (no copy; artifacts are never
    written after they are published), or a copy where links are not possible."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def concat(sources: Iterable[Path], dst: Path) -> None:
    """Rows of every source, in order, into one new file ``dst``."""
    sources = list(sources)
    layouts = [_layout(s) for s in sources]
    shape, dtype = layouts[0][1], layouts[0][2]
    create(dst, sum(lay[1][0] for lay in layouts), shape[1:], dtype)
    at = 0
    for src, (_, src_shape, _) in zip(sources, layouts, strict=True):
        for start, block in _blocks(src_shape[0], src_shape, dtype):
            write_rows(dst, at + start, read_rows(src, slice(start, start + block)))
        at += src_shape[0]


def _blocks(rows: int, shape: tuple[int, ...], dtype: np.dtype) -> Iterable[tuple[int, int]]:
    row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)
    block = max(1, BLOCK_BYTES // row_bytes)
    for start in range(0, rows, block):
        yield start, min(block, rows - start)
