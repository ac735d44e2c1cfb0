"""Atomic publishing, the record, locks and leftovers."""

from __future__ import annotations

import json

import pytest

from mmcli import artifacts
from mmcli.artifacts import records
from mmcli.errors import LockedError, MissingInputError, UsageError
from mmcli.stages.staleness import current

K1, K2 = "1" * 64, "2" * 64


def _build(out, key=K1, content=b"data", fail=False):
    with artifacts.Builder(out, stage="evaluate", params={"a": 1}, inputs={}, key=key) as b:
        (b.dir / "x.bin").write_bytes(content)
        if fail:
            raise RuntimeError("killed half way")
    return b.record


def test_publish_writes_record_last_with_hashes(tmp_path):
    record = _build(tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / "mmcli.json").read_text())
    assert on_disk == records.dump(record)
    assert record.outputs["x.bin"].bytes == 4
    assert len(record.fingerprint) == 64
    assert current(tmp_path / "out", K1) == record
    assert current(tmp_path / "out", "f" * 64) is None
    # No temporary folder is left; beside the artifact only the stat cache of the outputs
    # the writer hashed (readers then need not hash them again).
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".out.verified.json"]
    verified = json.loads((tmp_path / ".out.verified.json").read_text())
    assert verified["x.bin"][1] == record.outputs["x.bin"].sha256


def _build_many(out, n):
    with artifacts.Builder(out, stage="evaluate", params={}, inputs={}, key=K1) as b:
        for i in range(n):
            (b.dir / f"f{i}.bin").write_bytes(b"%d" % i)
    return b.record


def test_many_outputs_read_the_stat_cache_once_and_write_it_at_exit(tmp_path, monkeypatch):
    """Checking each of N outputs read (and wrote) the whole stat cache each time: a fuse
    of 5,000 feature files took 375 s. The cache is read once per change of the file;
    what a reader adds is written once, at exit."""
    from mmcli.artifacts import filecache, record

    _build_many(tmp_path / "out", 300)
    cache = tmp_path / ".out.verified.json"
    cache.unlink()  # e.g. a work folder copied elsewhere: every output is hashed again
    reads, writes = [], []
    monkeypatch.setattr(filecache, "read_cache", lambda p: reads.append(p) or {})
    real_write = filecache.write_cache
    monkeypatch.setattr(filecache, "write_cache", lambda p, e: writes.append(p) or real_write(p, e))
    art = artifacts.load(tmp_path / "out")
    for i in range(300):
        art.file(f"f{i}.bin")
    assert len(reads) <= 1 and cache not in writes
    record.save_verified()  # what the process does at exit (other tests' caches too)
    assert writes.count(cache) == 1
    assert len(json.loads(cache.read_text())) == 300  # every output checked
    for i in range(300):
        art.file(f"f{i}.bin")
    assert len(reads) <= 1
    # Changed behind the reader's back: refused, whatever the memo knew.
    (tmp_path / "out" / "f7.bin").write_bytes(b"X")
    with pytest.raises(MissingInputError, match="changed since"):
        art.file("f7.bin")


def test_failure_leaves_previous_artifact_untouched(tmp_path):
    first = _build(tmp_path / "out")
    with pytest.raises(RuntimeError):
        _build(tmp_path / "out", key=K2, content=b"new", fail=True)
    assert (tmp_path / "out" / "x.bin").read_bytes() == b"data"
    assert artifacts.load(tmp_path / "out").fingerprint == first.fingerprint
    assert not list(tmp_path.glob(".out.tmp-*"))


def _replaced(tmp_path):
    return list(tmp_path.glob(".out.old-*"))


def test_replaced_artifact_is_deleted(tmp_path):
    _build(tmp_path / "out")
    _build(tmp_path / "out", key=K2, content=b"new")  # small: deleted before returning
    assert (tmp_path / "out" / "x.bin").read_bytes() == b"new"
    assert _replaced(tmp_path) == []


def test_big_replaced_artifact_is_deleted_in_the_background(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts.publish, "BACKGROUND_DELETE_BYTES", 4)
    spawned = []
    real = artifacts.publish.subprocess.Popen
    monkeypatch.setattr(
        artifacts.publish.subprocess, "Popen", lambda *a, **k: spawned.append(real(*a, **k))
    )
    _build(tmp_path / "out")
    record = _build(tmp_path / "out", key=K2, content=b"new")
    assert current(tmp_path / "out", K2) == record
    assert len(spawned) == 1 and spawned[0].wait(timeout=30) == 0
    assert _replaced(tmp_path) == []


def test_leftover_temporary_folder_is_never_accepted_and_is_cleaned(tmp_path):
    leftover = tmp_path / ".out.tmp-99999"
    leftover.mkdir()
    (leftover / "x.bin").write_bytes(b"half")
    with pytest.raises(MissingInputError):
        artifacts.load(leftover)
    _build(tmp_path / "out")
    assert not leftover.exists()


def test_size_change_makes_artifact_stale(tmp_path):
    _build(tmp_path / "out")
    (tmp_path / "out" / "x.bin").write_bytes(b"tampered!")
    assert current(tmp_path / "out", K1) is None


def test_second_writer_is_refused_while_locked(tmp_path):
    with artifacts.locked(tmp_path / "out"):
        with pytest.raises(LockedError, match="locked by PID"):
            with artifacts.locked(tmp_path / "out"):
                pass
    with artifacts.locked(tmp_path / "out"):  # released: the next run proceeds
        _build(tmp_path / "out")


def test_refuses_to_replace_a_folder_that_is_not_an_artifact(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="not an mmcli artifact"):
        _build(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_load_errors(tmp_path):
    with pytest.raises(MissingInputError, match="no such artifact"):
        artifacts.load(tmp_path / "none")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "mmcli.json").write_text("{not json")
    with pytest.raises(MissingInputError, match="unreadable record"):
        artifacts.load(tmp_path / "broken")
    _build(tmp_path / "out")
    with pytest.raises(MissingInputError, match="is an evaluate artifact, expected train"):
        artifacts.load(tmp_path / "out", stages=("train",))


@pytest.mark.parametrize("mask", [0o027, 0o002])
def test_every_artifact_file_follows_the_umask(dataset, tmp_path, mask):
    """Weight files were 0600 whatever the umask (safetensors' own choice), the rest 0644."""
    import stat
    import subprocess

    from conftest import MMCLI

    def run(*args):
        done = subprocess.run(
            [*MMCLI, *map(str, args), "--quiet"],
            capture_output=True,
            text=True,
            umask=mask,
        )
        assert done.returncode == 0, done.stderr

    run("preprocess", dataset, "--out", tmp_path / "prep")
    run("extract-features", tmp_path / "prep", "--out", tmp_path / "feats")
    run("fuse", tmp_path / "feats", "--out", tmp_path / "fused")
    run("train", tmp_path / "fused", "--out", tmp_path / "model", "--epochs", "2")
    run("predict", tmp_path / "model", dataset, "--out", tmp_path / "p.csv")
    found = {p.name for p in tmp_path.rglob("*.safetensors")}
    assert {"fusion.safetensors", "model.safetensors"} <= found
    for path in [tmp_path / "p.csv", *tmp_path.rglob("*")]:
        want = (0o777 if path.is_dir() else 0o666) & ~mask
        assert stat.S_IMODE(path.stat().st_mode) == want, f"{path}: {oct(path.stat().st_mode)}"
