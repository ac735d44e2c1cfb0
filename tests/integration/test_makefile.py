"""The shipped Makefile example: real `make` runs the chain, a second `make` does nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_twice_second_run_does_nothing(dataset, tmp_path):
    mmcli = Path(sys.executable).parent / "mmcli"
    args = [
        "make",
        "-f",
        str(ROOT / "examples/pipeline.mk"),
        f"MMCLI={mmcli}",
        f"MANIFEST={dataset}",
        f"WORK={tmp_path / 'work'}",
    ]
    first = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "preprocess" in first.stdout and "evaluate" in first.stdout
    assert (tmp_path / "work/eval/metrics.json").exists()
    second = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert second.returncode == 0
    assert "mmcli" not in second.stdout and "Nothing to be done" in second.stdout
    # touching the manifest without changing it: preprocess says up to date, nothing downstream
    dataset.touch()
    third = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert third.returncode == 0
    assert "preprocess" in third.stdout and "extract-features" not in third.stdout
