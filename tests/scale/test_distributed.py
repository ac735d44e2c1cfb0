"""Data-parallel training under torchrun, and the device choice."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import invoke, run_ok
from safetensors.numpy import load_file

from mmcli.errors import EXIT_USAGE

SAME_STEPS = ["--model", "mlp", "--dropout", "0", "--epochs", "4"]


def _batch_leaving_one_row(pipeline) -> int:
    """An odd batch size whose epoch ends in a batch of one train row."""
    import pandas as pd

    n = int((pd.read_parquet(pipeline / "prep" / "rows.parquet")["_split"] == "train").sum())
    return next(b for b in range(3, n) if n % b == 1 and b % 2)


@pytest.mark.parametrize("batch", ["25", "leaving one row"])
def test_two_torchrun_processes_train_the_one_process_model(pipeline, tmp_path, batch):
    # Dropout off: its random masks are drawn per process, the one thing that differs.
    # A batch of 25 over 2 processes gives them unequal shares; a last batch of one row
    # leaves the second process none (it still takes the step, with zero rows).
    batch = batch if batch.isdigit() else str(_batch_leaving_one_row(pipeline))
    steps = [*SAME_STEPS, "--batch-size", batch]
    run_ok("train", pipeline / "fused", "--out", tmp_path / "one", *steps, "--device", "cpu")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "mmcli",
            "train",
            str(pipeline / "fused"),
            "--out",
            str(tmp_path / "two"),
            *steps,
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count('"stage": "train"') == 1  # rank 0 alone reports
    assert '"processes": 2' in launched.stdout
    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_allclose(two[name], one[name], atol=1e-5, rtol=1e-4, err_msg=name)
    assert not list(tmp_path.glob(".two.tmp-*"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_a_missing_device_is_a_usage_error(pipeline, tmp_path):
    result = invoke("train", pipeline / "fused", "--out", tmp_path / "m", "--device", "cuda")
    assert result.exit_code == EXIT_USAGE
    assert "--device cuda: no such device" in result.stderr
    result = invoke("train", pipeline / "fused", "--out", tmp_path / "m", "--device", "tpu")
    assert result.exit_code == EXIT_USAGE
