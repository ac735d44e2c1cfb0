"""Helpers for fault tests: the real CLI in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MMCLI = [sys.executable, "-m", "mmcli"]


def cli(*args: object, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MMCLI, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def start(*args: object, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [*MMCLI, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.fixture()
def work(pipeline, tmp_path) -> Path:
    """A private copy of the session's pipeline artifacts (prep .. eval)."""
    for name in ("prep", "feats", "fused", "model", "eval"):
        shutil.copytree(pipeline / name, tmp_path / name)
    return tmp_path
