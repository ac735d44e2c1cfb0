"""Row-addressed .npy files and the ordered worker map."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mmcli import parallel
from mmcli.artifacts import arrays


def test_created_file_is_what_np_save_writes(tmp_path):
    data = np.arange(7 * 3 * 2, dtype=np.float32).reshape(7, 3, 2)
    np.save(tmp_path / "ref.npy", data)
    arrays.create(tmp_path / "a.npy", 7, (3, 2), np.float32)
    arrays.write_rows(tmp_path / "a.npy", 4, data[4:])  # any order, any process
    arrays.write_rows(tmp_path / "a.npy", 0, data[:4])
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()
    assert np.array_equal(arrays.read_rows(tmp_path / "a.npy", np.array([6, 1])), data[[6, 1]])
    assert arrays.row_count(tmp_path / "a.npy") == 7
    assert arrays.row_shape(tmp_path / "a.npy") == (3, 2)


def test_unwritten_rows_are_zero(tmp_path):
    arrays.create(tmp_path / "a.npy", 5, (4,), np.uint8)
    arrays.write_rows(tmp_path / "a.npy", 2, np.full((1, 4), 9, np.uint8))
    loaded = np.load(tmp_path / "a.npy")
    assert loaded.dtype == np.uint8 and loaded.sum() == 36 and loaded[2].tolist() == [9] * 4


def _padded_rows(rows: int, width: int) -> np.ndarray:
    """Rows of audio-like data with zero tails of every kind: none, short, long, whole."""
    data = np.random.default_rng(3).standard_normal((rows, width)).astype(np.float32)
    for i in range(rows):
        data[i, [width, width - 3, width // 2, 0, 1][i % 5] :] = 0
    return data


def _allocated(path) -> int:
    return path.stat().st_blocks * 512


@pytest.fixture
def holes(tmp_path):
    probe = tmp_path / "probe"
    with open(probe, "wb") as f:
        f.truncate(1 << 20)
    if _allocated(probe) >= 1 << 20:
        pytest.skip("this file system does not keep holes")


def test_zero_tails_are_left_as_holes_and_read_as_zeros(tmp_path, holes):
    data = _padded_rows(10, 4096)  # 16 KiB rows
    np.save(tmp_path / "ref.npy", data)
    path = tmp_path / "a.npy"
    arrays.create(path, 10, (4096,), np.float32)
    arrays.write_new_rows(path, 0, data[:3])
    arrays.write_new_rows(path, 3, data[3:])
    assert path.read_bytes() == (tmp_path / "ref.npy").read_bytes()
    # zero tails: rows 3, 4, 8, 9 (nearly) whole, rows 2 and 7 half: at least 4 rows' worth
    assert _allocated(path) <= path.stat().st_size - 4 * 16384


def test_copied_rows_keep_their_holes(tmp_path, holes):
    data = _padded_rows(10, 4096)
    src, dst = tmp_path / "src.npy", tmp_path / "dst.npy"
    arrays.create(src, 10, (4096,), np.float32)
    arrays.write_new_rows(src, 0, data)
    arrays.create(dst, 12, (4096,), np.float32)
    arrays.copy_rows(src, 2, dst, 1, 7)  # rows 2..8 to 1..7
    arrays.write_new_rows(dst, 9, data[:2])
    expected = np.zeros((12, 4096), np.float32)
    expected[1:8] = data[2:9]
    expected[9:11] = data[:2]
    assert np.array_equal(np.load(dst), expected)
    # holes: rows 0, 8 and 11 (never written), the copies of rows 3, 4, 8, half of 2 and 7
    assert _allocated(dst) <= dst.stat().st_size - 5 * 16384


@pytest.mark.parametrize("block_bytes", [7, 1 << 20])
def test_hash_taken_while_rows_are_written_is_the_file_hash(tmp_path, monkeypatch, block_bytes):
    monkeypatch.setattr(arrays, "HASH_BLOCK_BYTES", block_bytes)
    data = np.random.default_rng(1).standard_normal((10, 3)).astype(np.float32)
    path = tmp_path / "a.npy"
    arrays.create(path, 10, (3,), np.float32)
    follower = arrays.FollowingSha256(path)
    for start, stop in ((0, 4), (4, 5), (5, 8)):  # rows 8 and 9 never written: zeros
        arrays.write_rows(path, start, data[start:stop])
        follower.rows_done(stop)
    data[8:] = 0
    np.save(tmp_path / "ref.npy", data)
    assert follower.hexdigest() == hashlib.sha256((tmp_path / "ref.npy").read_bytes()).hexdigest()


@pytest.mark.parametrize("told", [False, True], ids=["holes asked", "ranges told"])
@pytest.mark.parametrize("block_bytes", [4096, 1 << 20])
def test_hash_of_a_file_with_holes_is_the_file_hash(tmp_path, monkeypatch, block_bytes, told):
    """The follower finds the data by asking the file (SEEK_DATA), or is told the ranges
    the writers wrote (new rows, and rows copied from another file)."""
    monkeypatch.setattr(arrays, "HASH_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(arrays, "_ZEROS", memoryview(bytes(block_bytes)))
    data = _padded_rows(10, 4096)
    src = tmp_path / "src.npy"
    arrays.create(src, 10, (4096,), np.float32)
    arrays.write_new_rows(src, 0, data)
    path = tmp_path / "a.npy"
    arrays.create(path, 14, (4096,), np.float32)
    follower = arrays.FollowingSha256(path)
    for start, stop in ((0, 3), (3, 4), (4, 10)):  # rows 12 and 13 never written
        written = arrays.write_new_rows(path, start, data[start:stop])
        follower.rows_done(stop, written if told else None)
    written = arrays.copy_rows(src, 1, path, 10, 2)  # rows 1 and 2 again, the 2nd half zeros
    follower.rows_done(12, written if told else None)
    expected = np.zeros((14, 4096), np.float32)
    expected[:10], expected[10:12] = data, data[1:3]
    np.save(tmp_path / "ref.npy", expected)
    assert path.read_bytes() == (tmp_path / "ref.npy").read_bytes()
    assert follower.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(OSError, match="shorter"):
        arrays.FollowingSha256(path).hexdigest()


@pytest.mark.parametrize("block_bytes", [1, 64, 1 << 20])
def test_select_and_concat_in_blocks(tmp_path, monkeypatch, block_bytes):
    monkeypatch.setattr(arrays, "BLOCK_BYTES", block_bytes)  # many blocks, or one
    data = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    np.save(tmp_path / "src.npy", data)
    keep = np.array([0, 3, 4, 20, 49])
    arrays.select(tmp_path / "src.npy", tmp_path / "kept.npy", keep)
    assert np.array_equal(np.load(tmp_path / "kept.npy"), data[keep])
    assert not (tmp_path / "src.npy").exists()
    np.save(tmp_path / "a.npy", data[:20])
    np.save(tmp_path / "b.npy", data[20:])
    arrays.concat([tmp_path / "a.npy", tmp_path / "b.npy"], tmp_path / "ab.npy")
    np.save(tmp_path / "ref.npy", data)
    assert (tmp_path / "ab.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


@pytest.mark.parametrize("workers", [1, 3])
def test_ordered_map_keeps_order_and_raises(workers):
    assert list(parallel.ordered_map(_square, range(20), workers)) == [x * x for x in range(20)]
    with pytest.raises(ValueError, match="three"):
        list(parallel.ordered_map(_fail_on_three, range(10), workers))


def test_workers_default_to_every_core():
    assert parallel.resolve_workers(None) == parallel.available_cores() >= 1
    assert parallel.resolve_workers(3) == 3


def test_workers_leave_when_their_parent_is_killed():
    import subprocess
    import sys
    import time

    import psutil

    code = (
        "import time; from mmcli import parallel; "
        "list(parallel.ordered_map(time.sleep, [30] * 4, 2))"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while len(workers := psutil.Process(parent.pid).children()) < 2:
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.1)
    finally:
        parent.kill()
        parent.wait()
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive, f"workers outlived their killed parent: {alive}"
