"""compare: the metrics of several evaluations side by side, with differences to the first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmcli import artifacts
from mmcli.errors import MmcliError


def run(paths: list[Path]) -> dict[str, Any]:
    """{"evaluations": [...], "rows": [...], "parameters": [...], "warnings": [...]}

    Each evaluation says what it scored (split, data, model); each metric row which way
    is better; ``parameters`` lists the model parameters that differ between them, and
    ``warnings`` says when the evaluations did not score the same rows."""
    from mmcli.metrics import LOWER_IS_BETTER

    evaluations = [_evaluation(path) for path in paths]
    names: list[str] = []
    for ev in evaluations:
        names += [n for n in ev["metrics"] if n not in names]
    rows = []
    for name in names:
        values = [ev["metrics"].get(name) for ev in evaluations]
        base = values[0]
        diffs = [None if v is None or base is None else round(v - base, 6) for v in values]
        better = (
            None
            if name.startswith("contribution:") or name == "majority_baseline_accuracy"
            else "lower"
            if name in LOWER_IS_BETTER or name == "expected_calibration_error"
            else "higher"
        )
        rows.append({"metric": name, "values": values, "differences": diffs, "better": better})
    return {
        "stage": "compare",
        "evaluations": [{k: v for k, v in e.items() if k != "metrics"} for e in evaluations],
        "rows": rows,
        "parameters": _parameter_diff(evaluations),
        "warnings": _warnings(evaluations),
    }


def _evaluation(path: Path) -> dict[str, Any]:
    """What one evaluation scored, and its numbers."""
    art = artifacts.load(path, stages=("evaluate",))
    metrics = art.json("metrics.json")
    inputs = art.record.inputs
    if inputs.upstream is not None:
        data = {"path": str(art.resolve(inputs.upstream.path)), "id": inputs.upstream.fingerprint}
    elif inputs.manifest is not None:  # evaluate MODEL TABLE
        data = {"path": str(art.resolve(inputs.manifest.path)), "id": inputs.manifest.sha256}
    else:
        data = {"path": "?", "id": ""}
    model_ref = inputs.model
    params = metrics.get("provenance", {}).get("model", {}).get("params")
    if params is None and model_ref is not None:  # an evaluation made before provenance
        try:
            params = artifacts.load(art.resolve(model_ref.path)).record.params
        except MmcliError:
            params = {}
    return {
        "path": str(path),
        "task": metrics["task"],
        "split": metrics["split"],
        "rows": metrics.get("n"),
        "data": data["path"],
        "data_id": data["id"][:12],
        "model": model_ref.fingerprint[:12] if model_ref else "",
        "model_params": params or {},
        "metrics": _scalars(metrics),
    }


def _parameter_diff(evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model parameters whose values are not the same in every evaluation."""
    keys = sorted({k for e in evaluations for k in e["model_params"]})
    diff = []
    for key in keys:
        values = [e["model_params"].get(key) for e in evaluations]
        if any(v != values[0] for v in values):
            diff.append({"parameter": key, "values": values})
    return diff


def _warnings(evaluations: list[dict[str, Any]]) -> list[str]:
    """What makes the numbers of the evaluations not comparable one to one."""
    warnings = []
    first = evaluations[0]
    for ev in evaluations[1:]:
        if (ev["split"], ev["data_id"]) != (first["split"], first["data_id"]):
            warnings.append(
                f"{ev['path']} scored other rows than {first['path']} "
                f"({ev['split']} of {ev['data']} [{ev['data_id']}], not {first['split']} of "
                f"{first['data']} [{first['data_id']}]): differences mix data and model"
            )
        if ev["task"] != first["task"]:
            warnings.append(f"{ev['path']} is {ev['task']}, {first['path']} {first['task']}")
    return warnings


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
    header.append("better")
    lines = [
        *(f"> **warning:** {w}" for w in result["warnings"]),
        *([""] if result["warnings"] else []),
        "| evaluation | split | rows | data | model |",
        "|---|---|---|---|---|",
        *(
            f"| {e['path']} | {e['split']} | {e['rows']} | {e['data']} ({e['data_id']}) | "
            f"{e['model']} |"
            for e in result["evaluations"]
        ),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in result["rows"]:
        cells = [
            row["metric"],
            *(_fmt(v) for v in row["values"]),
            *(_fmt(d, signed=True) for d in row["differences"][1:]),
            row["better"] or "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if result["parameters"]:
        lines += ["", "| model parameter | " + " | ".join(paths) + " |"]
        lines.append("|" + "---|" * (len(paths) + 1))
        for p in result["parameters"]:
            lines.append(f"| {p['parameter']} | " + " | ".join(map(str, p["values"])) + " |")
    return "\n".join(lines) + "\n"


def verdict(row: dict[str, Any], difference: float | None) -> str | None:
    """``better``, ``worse`` or None (no direction, no change, or no value) for a difference."""
    if difference is None or row["better"] is None or abs(difference) < 1e-9:
        return None
    up = difference > 0
    return "better" if up == (row["better"] == "higher") else "worse"


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
