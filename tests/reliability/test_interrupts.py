"""Killed, interrupted and starved runs never leave anything a later stage accepts."""

from __future__ import annotations

import json
import resource
import signal
import time

import pytest
from conftest import cli, start

from mmcli import artifacts
from mmcli.errors import EXIT_IO, EXIT_LOCKED


def _wait_for(proc, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"never saw {text!r}")


def _outputs(path):
    return json.loads((path / "mmcli.json").read_text())["outputs"]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_clean_up_and_keep_the_old_artifact(work, sig, code):
    before = _outputs(work / "model")
    proc = start(
        "train",
        work / "fused",
        "--out",
        work / "model",
        "--epochs",
        "100000",
        "--patience",
        "100000",
        "--seed",
        "3",
    )
    _wait_for(proc, "training epochs")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert "interrupted" in err and "Traceback" not in err
    assert _outputs(work / "model") == before  # the previous artifact is untouched
    assert not list(work.glob(".model.tmp-*"))


def test_sigkill_at_any_point_then_rerun_gives_clean_bytes(dataset, work, tmp_path):
    clean = _outputs(work / "prep")  # built from the same manifest with default parameters
    out = tmp_path / "killed"
    for delay in (0.3, 0.8, 1.3, 1.8, 2.5, 4.0):
        proc = start("preprocess", dataset, "--out", out, "--force")
        time.sleep(delay)
        proc.kill()
        proc.wait()
        if (out / "mmcli.json").exists():  # if anything is there, it is complete and valid
            art = artifacts.load(out)
            assert cli("status", out).returncode == 0, art.path
    rerun = cli("preprocess", dataset, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    assert _outputs(out) == clean
    assert not list(tmp_path.glob(".killed.tmp-*"))


def test_a_full_disk_keeps_the_old_output_and_exits_6(dataset, work):
    before = _outputs(work / "prep")

    def small_files():  # any file over 64 KiB fails to write (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    proc = cli("preprocess", dataset, "--out", work / "prep", "--force", preexec_fn=small_files)
    assert proc.returncode == EXIT_IO, proc.stderr
    assert str(work / "prep") in proc.stderr and "Traceback" not in proc.stderr
    assert _outputs(work / "prep") == before
    assert not list(work.glob(".prep.tmp-*"))


def test_concurrent_writers_one_waits_or_fails(work):
    holder = start(
        "train",
        work / "fused",
        "--out",
        work / "model2",
        "--epochs",
        "100000",
        "--patience",
        "100000",
    )
    _wait_for(holder, "training epochs")
    try:
        refused = cli("train", work / "fused", "--out", work / "model2", "--epochs", "1")
        assert refused.returncode == EXIT_LOCKED
        assert "locked by PID" in refused.stderr and "mmcli train" in refused.stderr
        waiter = start("train", work / "fused", "--out", work / "model2", "--epochs", "1", "--wait")
        time.sleep(1.0)
        assert waiter.poll() is None  # still waiting for the lock
    finally:
        holder.kill()  # a killed holder's lock is released by the kernel
        holder.wait()
    _, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert artifacts.load(work / "model2").params["epochs"] == 1


@pytest.mark.parametrize(
    ("stage", "args"),
    [
        ("extract-features", ["prep"]),
        ("fuse", ["feats"]),
        ("train", ["fused", "--seed", "4", "--epochs", "20"]),
        ("evaluate", ["model", "fused", "--split", "all"]),
    ],
)
def test_sigkill_in_every_stage_keeps_old_or_new_never_half(work, stage, args):
    out = work / "out"
    inputs = [
        work / a if not a.startswith("-") and a[0].isalpha() and (work / a).exists() else a
        for a in args
    ]
    first = cli(stage, *inputs, "--out", out)
    assert first.returncode == 0, first.stderr
    old = _outputs(out)
    for delay in (0.8, 2.5):
        proc = start(stage, *inputs, "--out", out, "--force")
        time.sleep(delay)
        proc.kill()
        proc.wait()
        # Whatever the moment: the old artifact intact, or the complete new one (same bytes),
        # or nothing at all; never a folder a later stage would accept half-written.
        if (out / "mmcli.json").exists():
            assert cli("status", out).returncode == 0
            assert _outputs(out) == old
    again = cli(stage, *inputs, "--out", out, "--force")
    assert again.returncode == 0 and _outputs(out) == old
    assert not list(work.glob(".out.tmp-*"))
