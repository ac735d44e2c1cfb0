"""Every plot is a real, non-blank 600 x 500 PNG, and the same input gives the same bytes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmcli import plots

HISTORY = [
    {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e + 0.02 * e, "val_score": 0.1 * e}
    for e in range(1, 7)
]

PLOTS = {
    "confusion": lambda p: plots.confusion_matrix_png(
        [[3, 1, 0], [0, 4, 1], [2, 0, 5]], ["cat", "dog", "bird"], p
    ),
    "curve": lambda p: plots.training_curve_png(HISTORY, p, best_epoch=4),
    "curve_marked": lambda p: plots.training_curve_png(
        [{**h, "best": h["epoch"] == 3} for h in HISTORY], p
    ),
    "scatter": lambda p: plots.predicted_vs_actual_png(
        [1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.5, 4.2], p
    ),
}


def _pixels(path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == (600, 500)
        return np.asarray(img.convert("L"), dtype=float)


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_plot_is_a_valid_non_blank_png_and_byte_identical(tmp_path, name):
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    PLOTS[name](first)
    PLOTS[name](second)
    assert _pixels(first).std() > 0
    assert first.read_bytes() == second.read_bytes()


def test_best_epoch_is_drawn(tmp_path):
    # Same curve with and without the marker must differ; "best": True and best_epoch= agree.
    plots.training_curve_png(HISTORY, tmp_path / "plain.png")
    plots.training_curve_png(HISTORY, tmp_path / "arg.png", best_epoch=3)
    PLOTS["curve_marked"](tmp_path / "flag.png")
    assert (tmp_path / "plain.png").read_bytes() != (tmp_path / "arg.png").read_bytes()
    assert (tmp_path / "arg.png").read_bytes() == (tmp_path / "flag.png").read_bytes()


def test_gaps_and_many_classes_do_not_fail(tmp_path):
    history = [{"epoch": 1, "train_loss": 0.9}, {"epoch": 2, "train_loss": 0.5, "val_loss": None}]
    plots.training_curve_png(history, tmp_path / "curve.png")
    k = 15
    cm = np.random.default_rng(0).integers(0, 50, (k, k)).tolist()
    plots.confusion_matrix_png(cm, [f"class_{i}" for i in range(k)], tmp_path / "cm.png")
    for name in ("curve.png", "cm.png"):
        assert _pixels(tmp_path / name).std() > 0


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, mmcli.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
