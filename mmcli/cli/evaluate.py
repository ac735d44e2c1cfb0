"""mmcli evaluate MODEL DATA|TABLE --out DIR [--fail-under METRIC=VALUE]"""

from __future__ import annotations

from typing import Any

import typer

from mmcli.cli._common import error
from mmcli.cli._stage import Stage
from mmcli.errors import EXIT_GATE


def _gates(summary: dict[str, Any]) -> None:
    if not summary["gates"]["passed"]:
        for failure in summary["gates"]["failures"]:
            error(f"quality gate failed: {failure}")
        raise typer.Exit(EXIT_GATE)


STAGE = Stage(
    "evaluate",
    config="EvaluateConfig",
    doc="Score a model on a split of its data or on a new labelled table: metrics, "
    "figures, a report, and CI gates.",
    finish=_gates,
)
command = STAGE.command()
