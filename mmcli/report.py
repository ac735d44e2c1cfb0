"""The evaluation report: Markdown that links the PNG files, and one self-contained HTML
page with the same figures embedded, both made from ``metrics.json``."""

from __future__ import annotations

import base64
import html as _html
from pathlib import Path
from typing import Any

FIGURES = [
    ("confusion_matrix.png", "Confusion matrix"),
    ("reliability.png", "Calibration (reliability diagram)"),
    ("roc_curves.png", "ROC curves"),
    ("pr_curves.png", "Precision-recall curves"),
    ("predicted_vs_actual.png", "Predicted vs actual"),
    ("residuals.png", "Residuals"),
    ("contributions.png", "Modality contributions"),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _sections(
    metrics: dict[str, Any], classes: list[str]
) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, header, rows) for every table of the report."""
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
    tables = [("Metrics", ["metric", "value"], headline)]
    if metrics["task"] == "classification":
        curves = metrics.get("per_class_curves", {})
        tables.append(
            (
                "Per class",
                ["class", "precision", "recall", "f1", "support", "roc_auc", "average_precision"],
                [
                    [
                        c,
                        *(
                            metrics["per_class"][c][k]
                            for k in ("precision", "recall", "f1", "support")
                        ),
                        curves.get(c, {}).get("roc_auc"),
                        curves.get(c, {}).get("average_precision"),
                    ]
                    for c in classes
                ],
            )
        )
    contrib = metrics.get("contributions", {})
    if contrib.get("columns"):
        tables.append(
            (
                f"Modality contributions ({contrib['metric']} {_fmt(contrib['full'])} with "
                "every column)",
                ["column masked", contrib["metric"], "drop"],
                [[c, v["score"], v["drop"]] for c, v in contrib["columns"].items()],
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
            )
        )
    return tables


def markdown(metrics: dict[str, Any], classes: list[str], title: str, folder: Path) -> str:
    lines = [
        f"# Evaluation: {title}, {metrics['split']} split",
        "",
        f"- rows: {metrics['n']}",
        f"- task: {metrics['task']}",
        "- full report with figures: [report.html](report.html)",
        "",
    ]
    for heading, header, rows in _sections(metrics, classes):
        lines += [f"## {heading}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += [
            "| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |" for row in rows
        ]
        lines.append("")
    for name, caption in FIGURES:
        if (folder / name).exists():
            lines += [f"![{caption}]({name})", ""]
    return "\n".join(lines)


def html(metrics: dict[str, Any], classes: list[str], title: str, folder: Path) -> str:
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
    for heading, header, rows in _sections(metrics, classes):
        parts.append(
            f"<h2>{esc(heading)}</h2><table><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in header)
            + "</tr>"
        )
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
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
