"""The evaluation report: Markdown that links the PNG files, and one self-contained HTML
page with the same figures embedded, both made from ``metrics.json``.

Class names, column names, ids and input cells are user text: in report.md every cell
and heading is escaped for HTML and Markdown (a CI job appends it to a page that
renders both), in report.html for HTML. Tables stay short: the per-class table holds
the ``MAX_CLASSES`` most frequent classes, and metrics.json has every one.
"""

from __future__ import annotations

import base64
import html as _html
import re
from pathlib import Path
from typing import Any

#: The per-class tables list at most this many classes, the most frequent.
MAX_CLASSES = 50

#: A longer cell is cut here, with an ellipsis (metrics.json holds the whole text).
MAX_CELL_CHARS = 1000

# Characters Markdown (GitHub's too: tables, math) reads as syntax in a table cell or a
# heading, each written backslash-escaped; an "_" between two letters or digits cannot
# start emphasis, so "balanced_accuracy" stays as it is.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*\[\]|~$#!]|(?<![^\W_])_|_(?![^\W_]))")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

#: Metric notes: why a value is missing or partial, shown under the metrics table.
_NOTES = ("roc_auc_reason", "per_class_curves_note", "confusion_matrix_note")

FIGURES = [
    ("confusion_matrix.png", "Confusion matrix"),
    ("reliability.png", "Calibration (reliability diagram)"),
    ("roc_curves.png", "ROC curves"),
    ("pr_curves.png", "Precision-recall curves"),
    ("predicted_vs_actual.png", "Predicted vs actual"),
    ("residuals.png", "Residuals"),
    ("contributions.png", "Modality contributions"),
    ("curve.png", "Training curve (the model's loss and val score by epoch)"),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "\u2026"
    return text


def md(text: Any) -> str:
    """``text`` as literal Markdown inline text, one line: HTML escaped (``<`` ``>``
    ``&``), Markdown syntax backslash-escaped, line breaks as ``<br>``."""
    text = _html.escape(_fmt(text), quote=False)
    return _LINE_BREAK.sub("<br>", _MARKDOWN_SYNTAX.sub(r"\\\1", text))


#: One table of the report: title, header, rows, and a line under it (or "").
Section = tuple[str, list[str], list[list[Any]], str]


def _sections(metrics: dict[str, Any], classes: list[str]) -> list[Section]:
    """(title, header, rows, note) for every table of the report."""
    tables = [_headline(metrics)]
    gates = metrics.get("gates")
    if gates and gates["checked"]:
        tables.append(
            (
                "Quality gates: " + ("passed" if gates["passed"] else "FAILED"),
                ["gate (--fail-under)", "result"],
                [[gate, result] for gate, result in gates["results"].items()],
                "",
            )
        )
    if metrics["task"] == "classification":
        tables.append(_per_class(metrics, classes))
    contrib = metrics.get("contributions", {})
    if contrib.get("columns"):
        tables.append(
            (
                f"Modality contributions ({contrib['metric']} {_fmt(contrib['full'])} with "
                "every column)",
                ["column masked", contrib["metric"], "drop"],
                [[c, v["score"], v["drop"]] for c, v in contrib["columns"].items()],
                "",
            )
        )
    worst = metrics.get("worst", [])
    if worst:
        tables.append(
            (
                "Worst-predicted rows",
                ["row", "id", "target", "prediction", "error", "inputs"],
                [
                    [
                        w["row"],
                        w["id"],
                        w["target"],
                        w["prediction"],
                        w["error"],
                        "; ".join(f"{k}={v}" for k, v in w.get("inputs", {}).items()),
                    ]
                    for w in worst
                ],
                "",
            )
        )
    if metrics.get("provenance"):
        candidates = metrics["provenance"]["model"].get("candidates")
        if candidates:
            tables.append(_candidates(candidates))
        tables.append(_provenance(metrics["provenance"]))
    return tables


def _candidates(candidates: list[dict[str, Any]]) -> Section:
    """``--model auto``: each candidate's scores and parameters; the chosen one marked."""
    folds = any("cv_score" in c for c in candidates)
    rows = [
        [c["name"] + (" (chosen)" if c["chosen"] else ""), c["val_score"]]
        + ([c.get("cv_score")] if folds else [])
        + [", ".join(f"{k}={_value(v)}" for k, v in c["params"].items())]
        for c in candidates
    ]
    columns = ["candidate", "val score"] + (["cv score"] if folds else []) + ["parameters"]
    on = "K-fold cross-validation on train+val (the val split is small)" if folds else "val split"
    note = f"Chosen on the {on}, never the test rows; a tie keeps the simpler model."
    return ("Model selection (--model auto)", columns, rows, note)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "+".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float | int) else str(value)


def _provenance(provenance: dict[str, Any]) -> Section:
    """Where the numbers come from: mmcli, the model, its parameters, the data."""

    def params(values: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(values.items()) if v not in (None, [], {}))

    model = provenance["model"]
    rows = [
        ["mmcli", provenance["mmcli_version"]],
        ["model", f"{model['path']} (fingerprint {model['fingerprint'][:12]})"],
        ["model parameters", params(model["params"])],
    ]
    for role in ("data", "table"):
        if role in provenance:
            ref = provenance[role]
            digest = ref.get("fingerprint") or ref.get("sha256", "")
            kind = "fingerprint" if "fingerprint" in ref else "sha256"
            rows.append([role, f"{ref['path']} ({kind} {digest[:12]})"])
    rows.append(["evaluate parameters", params(provenance["evaluate_params"])])
    return ("Provenance", ["what", "value"], rows, "Paths are relative to this report's folder.")


def _headline(metrics: dict[str, Any]) -> Section:
    if metrics["task"] == "classification":
        names = [
            "accuracy",
            "balanced_accuracy",
            "macro_f1",
            "weighted_f1",
            "roc_auc",
            "log_loss",
            "majority_baseline_accuracy",
        ]
        headline = [[n, metrics.get(n)] for n in names]
        headline.append(["expected_calibration_error", metrics["calibration"]["ece"]])
    else:
        names = ["mae", "rmse", "r2", "mean_baseline_mae"]
        headline = [[n, metrics.get(n)] for n in names]
        headline += [[f"residual {k}", v] for k, v in metrics["residuals"]["quantiles"].items()]
    notes = [f"{n.rsplit('_', 1)[0]}: {metrics[n]}." for n in _NOTES if metrics.get(n)]
    return ("Metrics", ["metric", "value"], headline, " ".join(notes))


def _per_class(metrics: dict[str, Any], classes: list[str]) -> Section:
    """The per-class table: every class, or the ``MAX_CLASSES`` most frequent."""
    from mmcli.metrics import most_frequent

    title, note, shown = "Per class", "", classes
    if len(classes) > MAX_CLASSES:
        support = [metrics["per_class"][c]["support"] for c in classes]
        shown = [classes[i] for i in most_frequent(support, MAX_CLASSES)]
        title = f"Per class: the {MAX_CLASSES} most frequent of {len(classes):,} classes"
        note = (
            f"{len(classes) - MAX_CLASSES:,} less frequent classes are left out here; "
            "metrics.json has every class."
        )
    curves = metrics.get("per_class_curves", {})
    return (
        title,
        ["class", "precision", "recall", "f1", "support", "roc_auc", "average_precision"],
        [
            [
                c,
                *(metrics["per_class"][c][k] for k in ("precision", "recall", "f1", "support")),
                curves.get(c, {}).get("roc_auc"),
                curves.get(c, {}).get("average_precision"),
            ]
            for c in shown
        ],
        note,
    )


def markdown(metrics: dict[str, Any], classes: list[str], title: str, folder: Path) -> str:
    """report.md: every cell and heading that can carry user text is escaped (``md``)."""
    lines = [
        f"# Evaluation: {md(title)}, {md(metrics['split'])} split",
        "",
        f"- rows: {metrics['n']}",
        f"- task: {md(metrics['task'])}",
        "- full report with figures: [report.html](report.html)",
        "",
    ]
    for heading, header, rows, note in _sections(metrics, classes):
        lines += [f"## {md(heading)}", "", "| " + " | ".join(map(md, header)) + " |"]
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(md(v) for v in row) + " |" for row in rows]
        lines += ["", md(note), ""] if note else [""]
    media = [w for w in metrics.get("worst", []) if w.get("media")]
    if media:
        lines += ["## Worst-predicted rows: their media", ""]
        for w in media:
            links = [
                f"![{md(c)}]({f})" if f.endswith(".png") else f"[{md(c)}: listen]({f})"
                for c, f in w["media"].items()
            ]
            lines += [f"- row {w['row']} ({md(w['id'])}): " + " ".join(links), ""]
    for name, caption in FIGURES:
        if (folder / name).exists():
            lines += [f"![{caption}]({name})", ""]
    return "\n".join(lines)


def html(metrics: dict[str, Any], classes: list[str], title: str, folder: Path) -> str:
    """report.html: one page, figures embedded, every text HTML-escaped."""
    esc = _html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}: evaluation</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:left}th{background:#f3f3f3}img{max-width:100%}</style>",
        "</head><body>",
        f"<h1>Evaluation: {esc(title)}, {esc(metrics['split'])} split</h1>",
        f"<p>{metrics['n']} rows, {esc(metrics['task'])}.</p>",
    ]
    for heading, header, rows, note in _sections(metrics, classes):
        parts.append(
            f"<h2>{esc(heading)}</h2><table><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in header)
            + "</tr>"
        )
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
        if note:
            parts.append(f"<p>{esc(note)}</p>")
    parts += _media_html(metrics, folder)
    for name, caption in FIGURES:
        path = folder / name
        if path.exists():
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(
                f'<h2>{esc(caption)}</h2><img alt="{esc(caption)}" '
                f'src="data:image/png;base64,{data}">'
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _media_html(metrics: dict[str, Any], folder: Path) -> list[str]:
    """The worst rows' thumbnails and audio players, embedded (the page stays one file)."""
    esc = _html.escape
    media = [w for w in metrics.get("worst", []) if w.get("media")]
    if not media:
        return []
    parts = [
        "<h2>Worst-predicted rows: their media</h2>",
        "<table><tr><th>row</th><th>id</th><th>target</th><th>prediction</th><th>inputs</th></tr>",
    ]
    for w in media:
        cells = []
        for column, name in w["media"].items():
            data = base64.b64encode((folder / name).read_bytes()).decode()
            if name.endswith(".png"):
                cells.append(
                    f'<figure style="display:inline-block;margin:4px"><img alt="{esc(column)}" '
                    f'width="96" height="96" style="image-rendering:pixelated" '
                    f'src="data:image/png;base64,{data}"><figcaption>{esc(column)}</figcaption>'
                    "</figure>"
                )
            else:
                cells.append(
                    f'<figure style="display:inline-block;margin:4px"><audio controls '
                    f'src="data:audio/wav;base64,{data}"></audio>'
                    f"<figcaption>{esc(column)}</figcaption></figure>"
                )
        parts.append(
            f"<tr><td>{w['row']}</td><td>{esc(_fmt(w['id']))}</td>"
            f"<td>{esc(_fmt(w['target']))}</td><td>{esc(_fmt(w['prediction']))}</td>"
            f"<td>{''.join(cells)}</td></tr>"
        )
    parts.append("</table>")
    return parts
