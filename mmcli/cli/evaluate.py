"""mmcli evaluate MODEL DATA --out DIR [--fail-under METRIC=VALUE]"""

from __future__ import annotations

from typing import Any

import typer

from mmcli.cli._common import Reporter, error
from mmcli.cli._stage import Stage
from mmcli.errors import EXIT_GATE


def _run(cfg: Any, progress: Reporter, force: bool) -> dict[str, Any]:
    from mmcli.stages import evaluate

    return evaluate.run(cfg, progress=progress, force=force)


def _gates(summary: dict[str, Any]) -> None:
    if not summary["gates"]["passed"]:
        for failure in summary["gates"]["failures"]:
            error(f"quality gate failed: {failure}")
        raise typer.Exit(EXIT_GATE)


STAGE = Stage(
    "evaluate",
    config="EvaluateConfig",
    run=_run,
    doc="Score a model: metrics.json, a confusion matrix, a Markdown report, and CI gates.",
    finish=_gates,
)
command = STAGE.command()
