"""compare: the metrics of several evaluations side by side, with differences to the first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmcli import artifacts


def run(paths: list[Path]) -> dict[str, Any]:
    """{"evaluations": [...], "rows": [{"metric", "values": [...], "differences": [...]}]}"""
    evaluations = []
    for path in paths:
        art = artifacts.load(path, stages=("evaluate",))
        metrics = art.json("metrics.json")
        evaluations.append(
            {
                "path": str(path),
                "task": metrics["task"],
                "split": metrics["split"],
                "metrics": _scalars(metrics),
            }
        )
    names: list[str] = []
    for ev in evaluations:
        names += [n for n in ev["metrics"] if n not in names]
    rows = []
    for name in names:
        values = [ev["metrics"].get(name) for ev in evaluations]
        base = values[0]
        diffs = [None if v is None or base is None else round(v - base, 6) for v in values]
        rows.append({"metric": name, "values": values, "differences": diffs})
    return {
        "stage": "compare",
        "evaluations": [{k: e[k] for k in ("path", "task", "split")} for e in evaluations],
        "rows": rows,
    }


def _scalars(metrics: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        if key == "n":
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
        elif value is None and key in ("roc_auc", "r2"):
            out[key] = None
    if "calibration" in metrics:
        out["expected_calibration_error"] = metrics["calibration"]["ece"]
    for column, entry in metrics.get("contributions", {}).get("columns", {}).items():
        out[f"contribution:{column}"] = entry["drop"]
    return out


def markdown(result: dict[str, Any]) -> str:
    """A Markdown table for a pull-request comment."""
    paths = [e["path"] for e in result["evaluations"]]
    header = ["metric", *paths, *(f"Δ {p}" for p in paths[1:])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result["rows"]:
        cells = [
            row["metric"],
            *(_fmt(v) for v in row["values"]),
            *(_fmt(d, signed=True) for d in row["differences"][1:]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
