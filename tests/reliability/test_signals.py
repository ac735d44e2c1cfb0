"""SIGTERM and SIGINT end a stage within 2 s whatever its workers are doing: exit 143 /
130, nothing published, no temporary folder, no process left."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import start

#: Imported by every Python process whose path holds this folder: decoding one image
#: takes ``MMCLI_TEST_SLOW_DECODE`` seconds, as a clip at the edge of its budget would.
SLOW = """\
import os, time
if os.environ.get("MMCLI_TEST_SLOW_DECODE"):
    from mmcli.stages import media
    _real = media.load_image
    def _slow(*args, **kwargs):
        time.sleep(float(os.environ["MMCLI_TEST_SLOW_DECODE"]))
        return _real(*args, **kwargs)
    media.load_image = _slow
"""


@pytest.fixture()
def slow_env(tmp_path) -> dict[str, str]:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW)
    path = os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "MMCLI_TEST_SLOW_DECODE": "60"}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    ("sig", "code", "workers"),
    [
        (signal.SIGTERM, 143, 2),
        (signal.SIGINT, 130, 2),
        (signal.SIGTERM, 143, 1),
        (signal.SIGINT, 130, 1),
    ],
)
def test_a_signal_during_a_slow_decode_ends_the_stage_within_2_s(
    dataset_copy, tmp_path, slow_env, sig, code, workers
):
    out = tmp_path / "prep"
    proc = start(
        "preprocess", dataset_copy, "--out", out, "--workers", workers, "--force", env=slow_env
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".prep.tmp-*/arrays")):  # decoding has begun
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(random.uniform(0.2, 1.5))  # somewhere inside a worker's decode
    workers_seen = _children(proc.pid)
    assert len(workers_seen) >= (workers if workers > 1 else 0)
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == code, err
    assert took < 2.0, f"took {took:.1f} s"
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".prep.tmp-*"))
    time.sleep(0.5)  # a worker that survived would still be here
    assert [p for p in workers_seen if _alive(p)] == []


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_predicts_decode_ends_it_within_2_s(
    pipeline, dataset, tmp_path, slow_env, sig, code
):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "predictions.csv"
    proc = start(
        "predict", pipeline / "model", dataset, "--out", out,
        env={**slow_env, "TMPDIR": str(scratch)},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(scratch.glob("mmcli-predict-*/*")):  # decoding has begun
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(random.uniform(0.2, 1.5))
    workers_seen = _children(proc.pid)
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == code, err
    assert took < 2.0, f"took {took:.1f} s"
    assert "Traceback" not in err
    assert list(tmp_path.glob("predictions*")) == [] and list(tmp_path.glob(".predictions*")) == []
    assert list(scratch.iterdir()) == []  # the scratch folder went too
    time.sleep(0.5)
    assert [p for p in workers_seen if _alive(p)] == []


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_training_ends_it_within_2_s(pipeline, tmp_path, sig, code):
    out = tmp_path / "model"
    proc = start(
        "train", pipeline / "prep", "--out", out, "--model", "e2e", "--epochs", "500",
        "--patience", "500", "--workers", 2,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while not any("training epochs" in line for line in lines):  # training has begun
        assert proc.poll() is None and time.monotonic() < deadline, lines
        time.sleep(0.05)
    time.sleep(random.uniform(0.2, 2.0))
    assert proc.poll() is None, "training ended before the signal: make it longer"
    workers_seen = _children(proc.pid)
    sent = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=30)
    took = time.monotonic() - sent
    reader.join(timeout=5)
    err = "".join(lines)
    assert proc.returncode == code, err
    assert took < 2.0, f"took {took:.1f} s"
    assert "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".model.tmp-*"))
    time.sleep(0.5)
    assert [p for p in workers_seen if _alive(p)] == []  # no DataLoader worker left
