"""Shared fixtures: a tiny generated dataset and one pipeline run over it, reused by many tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from datagen import make_dataset  # noqa: E402

from mmcli.cli import app  # noqa: E402

FAST_TRAIN = ["--epochs", "60", "--patience", "15"]


def invoke(*args: str | Path):
    """Run mmcli in-process; returns the click Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def run_ok(*args: str | Path):
    result = invoke(*args)
    assert result.exit_code == 0, (
        f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return result


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """A 90-row, 3-class dataset (images, audio, text, number, category) as a CSV manifest."""
    return make_dataset(tmp_path_factory.mktemp("data"), n=90, seed=1)


@pytest.fixture()
def dataset_copy(dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the dataset that a test may modify."""
    shutil.copytree(dataset.parent, tmp_path / "data")
    return tmp_path / "data" / dataset.name


@pytest.fixture(scope="session")
def pipeline(dataset: Path, tmp_path_factory) -> Path:
    """The whole chain run once on ``dataset``; returns the work folder."""
    work = tmp_path_factory.mktemp("work")
    run_ok("preprocess", dataset, "--out", work / "prep")
    run_ok("extract-features", work / "prep", "--out", work / "feats")
    run_ok("fuse", work / "feats", "--out", work / "fused")
    run_ok("train", work / "fused", "--out", work / "model", *FAST_TRAIN)
    run_ok("evaluate", work / "model", work / "fused", "--out", work / "eval")
    return work


MMCLI = [sys.executable, "-m", "mmcli"]


def cli(*args: object, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (for fault tests)."""
    return subprocess.run(
        [*MMCLI, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def _default_sigint() -> None:
    # A job a non-interactive shell starts in the background inherits SIGINT ignored,
    # and Python keeps it so; the interrupt tests need the terminal's usual Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: object, **kwargs) -> subprocess.Popen:
    """Start the real CLI in a subprocess, stdout and stderr piped."""
    return subprocess.Popen(
        [*MMCLI, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
        **kwargs,
    )


@pytest.fixture()
def work(pipeline, tmp_path) -> Path:
    """A private copy of the session's pipeline artifacts (prep .. eval)."""
    for name in ("prep", "feats", "fused", "model", "eval"):
        shutil.copytree(pipeline / name, tmp_path / name)
    return tmp_path
