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


def test_plotting_leaves_the_callers_matplotlib_alone(tmp_path):
    """From a notebook: no backend switch, no pyplot figure left open."""
    code = (
        "import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot as plt\n"
        "from mmcli import plots\n"
        f"plots.training_curve_png({HISTORY!r}, {str(tmp_path / 'c.png')!r})\n"
        f"plots.confusion_matrix_png([[1, 0], [0, 1]], ['a', 'b'], {str(tmp_path / 'm.png')!r})\n"
        "print(matplotlib.get_backend(), plt.get_fignums())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["svg", "[]"]
    assert _pixels(tmp_path / "c.png").std() > 0


def test_training_curve_names_its_metric_and_its_legend_covers_no_line(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.append(fig))
    plots.training_curve_png(HISTORY, tmp_path / "c.png", best_epoch=3, metric="macro_f1")
    fig = saved[0]
    ax, twin = fig.axes
    assert twin.get_ylabel() == "val macro_f1"
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "train loss", "val loss", "best epoch (3)", "val macro_f1"
    ]  # fmt: skip
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.tight_layout()
    box, plot = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert box.y1 <= plot.y0  # entirely below the plot area
    assert box.y0 >= 0  # and inside the figure


def test_reliability_diagram_labels_what_it_draws(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.append(fig))
    bins = [
        {"low": i / 10, "high": (i + 1) / 10, "confidence": i / 10 + 0.05, "accuracy": i / 12,
         "count": 3}
        for i in range(10)
    ]  # fmt: skip
    plots.reliability_diagram_png(bins, tmp_path / "r.png")
    labels = [t.get_text() for t in saved[0].axes[0].get_legend().get_texts()]
    assert "mean confidence" not in labels
    assert "accuracy at the bin's mean confidence" in labels
