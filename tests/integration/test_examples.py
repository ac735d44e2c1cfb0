"""The shipped examples work: the CI workflow's commands, the pipeline file, DVC."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmcli.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_ci_workflow_uses_real_commands_and_a_valid_pipeline(tmp_path):
    workflow = yaml.safe_load((ROOT / "examples/ci/quality-gate.yml").read_text())
    runs = [s["run"] for s in workflow["jobs"]["pipeline"]["steps"] if "run" in s]
    mmcli_lines = [r for r in runs if r.startswith("mmcli ")]
    assert any("--fail-under" in r and "," in r for r in mmcli_lines)  # several metrics
    names = {name for name, _ in COMMANDS}
    assert {line.split()[1] for line in mmcli_lines} <= names
    result = subprocess.run(
        [BIN / "mmcli", "run", ROOT / "examples/pipeline.yaml", "--dry-run", "--json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert [s["stage"] for s in json.loads(result.stdout)["stages"]] == [
        "preprocess",
        "extract-features",
        "fuse",
        "train",
        "evaluate",
    ]


@pytest.mark.skipif(shutil.which("dvc", path=str(BIN)) is None, reason="dvc is not installed")
def test_dvc_repro_and_metrics(dataset, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(dataset.parent, project / "sample_data")
    shutil.copytree(ROOT / "examples/config", project / "examples/config")
    shutil.copytree(ROOT / "examples/dvc", project / "examples/dvc")
    (project / "examples/config/train.yaml").write_text("model: mlp\nepochs: 30\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}

    def dvc(*args):
        result = subprocess.run(
            [BIN / "dvc", *args], cwd=project, capture_output=True, text=True, env=env
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    dvc("init", "--no-scm")
    dvc("repro", "examples/dvc/dvc.yaml")
    metrics = json.loads(dvc("metrics", "show", "--json"))
    values = json.dumps(metrics)
    assert "macro_f1" in values and "accuracy" in values
    assert "per_class" not in values and "confusion" not in values  # the headline only
    again = dvc("repro", "examples/dvc/dvc.yaml")
    assert "didn't change" in again or "up to date" in again
    (project / "examples/config/train.yaml").write_text("model: logistic\nepochs: 30\n")
    changed = dvc("repro", "examples/dvc/dvc.yaml")
    # lines read: Running stage 'examples/dvc/dvc.yaml:train':
    running = [
        line.split("'")[1].rsplit(":", 1)[-1]
        for line in changed.splitlines()
        if line.startswith("Running stage")
    ]
    assert running == ["train", "evaluate"]
