"""Evaluate's figures and reports against hostile text and very many classes (issue 16,
families 8b and 9): labels that are mathtext, HTML or Markdown elsewhere are drawn and
written literally; 3,000 classes give memory-light metrics, top-k figures and short
tables."""

from __future__ import annotations

import json
import re
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import run_ok
from PIL import Image

from mmcli import metrics as m
from mmcli import plots, report
from mmcli.stages import evaluate

HOSTILE = [
    "$\\foo$",
    "<script>alert(1)</script>",
    "$x^$",
    "\\$",
    "_",
    "%",
    "L" * 500,
    "two\nlines",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",  # Hebrew, right to left
    "\U0001f600 cat",
    "a|b`c`",
    "x\\|y",
    "*bold* [link](http://x) ![img](http://x/t.png)",
]
FIGURES = [
    "confusion_matrix.png",
    "reliability.png",
    "roc_curves.png",
    "pr_curves.png",
    "contributions.png",
]


def _cells(row: str) -> list[str]:
    """A Markdown table row split as GitHub splits it: a backslash escapes the next
    character, any other "|" ends a cell."""
    cells, cell, chars = [], "", iter(row.strip()[1:])
    for c in chars:
        if c == "\\":
            cell += c + next(chars, "")
        elif c == "|":
            cells.append(cell.strip())
            cell = ""
        else:
            cell += c
    return cells


def _assert_literal_markdown(text: str, columns: dict[str, int]) -> None:
    """Every table row has its header's cell count, no raw HTML but <br>, no math."""
    assert "<" not in text.replace("<br>", "")
    # Every "$" and "`" is escaped: preceded by an odd number of backslashes.
    for match in re.finditer(r"(\\*)[$`]", text):
        assert len(match.group(1)) % 2 == 1, text[max(0, match.start() - 20) : match.end()]
    lines = text.splitlines()
    for heading, width in columns.items():
        start = lines.index(f"## {heading}") + 2
        assert len(_cells(lines[start])) == width
        for row in lines[start + 2 :]:
            if not row.startswith("|"):
                break
            assert len(_cells(row)) == width, row


def _classification_case(labels: list[str], rows_per_class: int = 3):
    rng = np.random.default_rng(0)
    k = len(labels)
    y = np.repeat(np.arange(k), rows_per_class)
    proba = rng.dirichlet(np.ones(k), size=len(y))
    proba[np.arange(len(y)), y] += 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    y, metrics = evaluate.score("classification", y, proba, labels)
    metrics = {"task": "classification", "split": "test", **metrics}
    metrics["contributions"] = {
        "metric": "macro_f1",
        "full": metrics["macro_f1"],
        "columns": {name: {"score": 0.5, "drop": 0.1 * i} for i, name in enumerate(labels)},
    }
    metrics["worst"] = [
        {
            "row": i,
            "id": labels[i],
            "target": labels[i],
            "prediction": labels[-1 - i],
            "error": 0.9,
            "inputs": {labels[i]: labels[-1 - i]},
        }
        for i in range(3)
    ]
    return y, proba, metrics


def test_hostile_labels_are_drawn_and_written_literally(tmp_path):
    y, proba, metrics = _classification_case(HOSTILE)
    (tmp_path / "worst").mkdir()
    for i, entry in enumerate(metrics["worst"]):  # media columns named with hostile text
        Image.new("RGB", (8, 8)).save(tmp_path / f"worst/{i}-0.png")
        sf.write(tmp_path / f"worst/{i}-1.wav", np.zeros(80, dtype=np.float32), 8000)
        entry["media"] = {HOSTILE[i]: f"worst/{i}-0.png", HOSTILE[-1 - i]: f"worst/{i}-1.wav"}
    evaluate.write_outputs(tmp_path, metrics, y, proba, HOSTILE, "<b>model</b> $x$")
    for name in FIGURES:
        assert (tmp_path / name).stat().st_size > 1000, name
    text = (tmp_path / "report.md").read_text()
    _assert_literal_markdown(text, {"Per class": 7, "Worst-predicted rows": 6, "Metrics": 2})
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "\\$\\\\foo\\$" in text and "two<br>lines" in text and "x\\\\\\|y" in text
    assert "\\[link\\](http://x) \\!\\[img\\]" in text
    assert "# Evaluation: &lt;b&gt;model&lt;/b&gt; \\$x\\$, test split" in text
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    media = text.split("## Worst-predicted rows: their media")[1].split("![Confusion")[0]
    assert "<script>" not in media and "&lt;script&gt;" in media
    assert page.count("<audio controls") == 3 and page.count("<figcaption>") == 6
    assert json.loads((tmp_path / "metrics.json").read_text())["per_class"].keys() == set(HOSTILE)


@pytest.mark.parametrize("name", ["$\\foo$", "$x^$", "$\\frac{1}{$", "\\$"])
def test_mathtext_in_labels_does_not_crash_any_figure(tmp_path, name):
    labels = [name, f"{name} 2", "plain"]
    y = np.array([0, 1, 2, 0, 1, 2])
    proba = np.eye(3)[[0, 1, 2, 1, 1, 2]] * 0.8 + 0.2 / 3
    plots.confusion_matrix_png([[1, 1, 0], [0, 2, 0], [0, 0, 2]], labels, tmp_path / "cm.png")
    plots.class_curves_png(y, proba, labels, tmp_path / "roc.png", kind="roc")
    plots.contributions_png({lab: 0.1 for lab in labels}, "macro_f1", tmp_path / "c.png")
    for f in ("cm.png", "roc.png", "c.png"):
        assert (tmp_path / f).stat().st_size > 1000


def test_figure_labels_are_one_short_line():
    long = plots.label("a" * 300 + "TAIL")
    assert len(long) == plots.LABEL_CHARS and "\u2026" in long and long.endswith("TAIL")
    assert plots.label("two\nlines\r\x00x\t") == "two lines  x "
    assert plots.label("$\\foo$") == "$\\foo$"  # drawn as is: no escaping needed


def test_markdown_cells_escape_html_and_table_breakers():
    assert report.md("<b>&</b>") == "&lt;b&gt;&amp;&lt;/b&gt;"
    assert report.md("a|b") == "a\\|b" and report.md("x\\|y") == "x\\\\\\|y"
    assert report.md("one\r\ntwo\nthree") == "one<br>two<br>three"
    assert report.md("`code` $m$") == "\\`code\\` \\$m\\$"
    # "_" inside a word cannot start emphasis: metric names stay readable
    assert report.md("balanced_accuracy") == "balanced_accuracy"
    assert report.md("_x_") == "\\_x\\_"
    assert report.md("x" * 5000).endswith("\u2026") and len(report.md("x" * 5000)) == 1000


@pytest.mark.parametrize("k", [2, 3, 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_loss_is_sklearns(k, dtype):
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(k)
    y = rng.integers(0, k, size=200)
    y[:k] = np.arange(k)
    proba = rng.dirichlet(np.ones(k) * 0.3, size=200)
    proba[0] = np.eye(k)[1 % k]  # a true class with probability 0: clipped, not inf
    proba[1] = np.eye(k)[1]  # exactly 1
    proba = proba.astype(dtype)
    names = [f"c{i}" for i in range(k)]
    with pytest.warns(UserWarning) if dtype == np.float32 else _no_warning():
        got = m.classification_metrics(y, proba, names)["log_loss"]
    with pytest.warns(UserWarning) if dtype == np.float32 else _no_warning():
        expected = log_loss(y, proba.astype(np.float64), labels=list(range(k)))
    assert got == round(expected, 6)


class _no_warning:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


def test_an_undefined_gate_says_why():
    metrics = m.classification_metrics(
        np.array([0, 1]), np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]]), ["a", "b", "c"]
    )
    assert metrics["roc_auc"] is None and "1 of 3 classes" in metrics["roc_auc_reason"]
    with pytest.raises(Exception, match="undefined for this data .undefined: 1 of 3"):
        m.check_gates(metrics, [("roc_auc", 0.5)])


def test_roc_auc_past_its_budget_is_none_with_a_reason(monkeypatch):
    y = np.arange(300) % 30  # every class has rows
    proba = np.random.default_rng(0).dirichlet(np.ones(30), size=300)
    names = [f"c{i}" for i in range(30)]
    assert isinstance(m.classification_metrics(y, proba, names)["roc_auc"], float)
    monkeypatch.setattr(m, "CURVE_CELL_BUDGET", 300 * 29)
    metrics = m.classification_metrics(y, proba, names)
    assert metrics["roc_auc"] is None
    assert metrics["roc_auc_reason"].startswith("not computed: 30 classes x 300 rows")


def _many_classes(k: int, n: int):
    rng = np.random.default_rng(1)
    weights = 1.0 / np.arange(1, k + 1)
    y = rng.choice(k, size=n, p=weights / weights.sum())
    proba = rng.random((n, k))
    proba **= 4
    proba[np.arange(n), y] += 5.0
    proba /= proba.sum(axis=1, keepdims=True)
    return y, proba, [f"class {i} <{i}>" for i in range(k)]


def test_many_classes_stay_light_and_figures_and_tables_are_cut(tmp_path, monkeypatch):
    k, n = 3000, 6000
    # A smaller budget keeps the test fast: 100 classes get one-vs-rest curves.
    monkeypatch.setattr(m, "CURVE_CELL_BUDGET", 100 * n)
    y, proba, classes = _many_classes(k, n)
    tracemalloc.start()
    try:
        y, metrics = evaluate.score("classification", y, proba, classes)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Nothing n x k or k x k beside the matrix: sklearn's log_loss alone makes 2 of 144 MB.
    assert peak < proba.nbytes / 4, f"{peak / 1e6:.0f} MB for a {proba.nbytes / 1e6:.0f} MB matrix"
    assert (
        metrics["confusion_matrix"] is None and "3000 classes" in metrics["confusion_matrix_note"]
    )
    cells = metrics["confusion_matrix_cells"]
    assert len(cells) <= n and sum(c[2] for c in cells) == n
    assert metrics["roc_auc"] is None and "1609 of 3000 classes" in metrics["roc_auc_reason"]
    assert len(metrics["per_class"]) == k and len(metrics["per_class_curves"]) == 100
    assert "the 100 most frequent of 3000" in metrics["per_class_curves_note"]
    assert metrics["log_loss"] == pytest.approx(-np.log(proba[np.arange(n), y]).mean(), abs=1e-6)

    titles, annotations = _spy_on_axes(monkeypatch)
    metrics = {"task": "classification", "split": "test", **metrics}
    evaluate.write_outputs(tmp_path, metrics, y, proba, classes, "many")
    for name in ("confusion_matrix.png", "reliability.png", "roc_curves.png", "pr_curves.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert "Confusion matrix: the 20 most frequent of 3,000 classes" in titles
    assert "ROC curves (one vs rest): the 20 most frequent of 3,000 classes" in titles
    assert annotations[0] <= 20 * 20
    _assert_no_big_square(json.loads((tmp_path / "metrics.json").read_text()))
    text = (tmp_path / "report.md").read_text()
    heading = "Per class: the 50 most frequent of 3,000 classes"
    assert f"## {heading}" in text
    assert "2,950 less frequent classes are left out here; metrics.json has every class." in text
    _assert_literal_markdown(text, {heading: 7})
    table = text.split(f"## {heading}")[1].split("\n\n")[1].splitlines()
    assert len(table) == 2 + 50
    assert _cells(table[2])[0] == "class 0 &lt;0&gt;"  # the most frequent first
    assert "2,950 less frequent classes" in (tmp_path / "report.html").read_text()


def _spy_on_axes(monkeypatch):
    from matplotlib.axes import Axes

    titles, annotations = [], [0]
    set_title, text = Axes.set_title, Axes.text

    def spy_title(self, label, *args, **kwargs):
        titles.append(label)
        return set_title(self, label, *args, **kwargs)

    def spy_text(self, *args, **kwargs):
        annotations[0] += 1
        return text(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "set_title", spy_title)
    monkeypatch.setattr(Axes, "text", spy_text)
    return titles, annotations


def _assert_no_big_square(value, bound=m.DENSE_CONFUSION_MAX_CLASSES):
    """No list of more than ``bound`` lists of more than ``bound`` items anywhere."""
    if isinstance(value, dict):
        for v in value.values():
            _assert_no_big_square(v, bound)
    elif isinstance(value, list):
        square = len(value) > bound and all(isinstance(v, list) and len(v) > bound for v in value)
        assert not square, "a k x k matrix in metrics.json"
        for v in value:
            _assert_no_big_square(v, bound)


def test_top_classes_are_the_most_frequent_ties_by_index():
    assert m.most_frequent([3, 9, 9, 0, 5], 3) == [1, 2, 4]
    assert m.confusion_counts([0, 1, 2, 2, 4], [0, 2, 2, 4, 4], [2, 0]) == [[1, 0], [0, 1]]


def test_hostile_labels_and_columns_through_the_cli(tmp_path):
    """A label such as $\\foo$ crashed evaluate in matplotlib's mathtext (exit 1, no
    report); <script> reached report.md raw."""
    labels = HOSTILE[:11]
    rows = [
        {
            "id": f"<b>r{i}</b>|{i}",
            "note $y$ <i>": f"word{i % 11} token{i % 11} filler{i % 3}",
            "w|<x>": float(i % 11) + 0.01 * (i % 5),
            "label": labels[i % 11],
        }
        for i in range(11 * 10)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    run_ok("preprocess", tmp_path / "m.csv", "--out", tmp_path / "prep", "--test-fraction", "0.3")
    run_ok("extract-features", tmp_path / "prep", "--out", tmp_path / "feats")
    run_ok("fuse", tmp_path / "feats", "--out", tmp_path / "fused")
    run_ok("train", tmp_path / "fused", "--out", tmp_path / "model", "--epochs", "20")
    result = run_ok("evaluate", tmp_path / "model", tmp_path / "fused", "--out", tmp_path / "eval")
    assert "Traceback" not in result.stderr
    evaluation = tmp_path / "eval"
    for name in FIGURES:
        assert (evaluation / name).stat().st_size > 1000, name
    text = (evaluation / "report.md").read_text()
    _assert_literal_markdown(text, {"Per class": 7, "Worst-predicted rows": 6})
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "\\$\\\\foo\\$" in text and "note \\$y\\$ &lt;i&gt;" in text and "w\\|&lt;x&gt;" in text
    assert "&lt;b&gt;r" in text  # ids
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert set(metrics["per_class"]) == set(labels)
