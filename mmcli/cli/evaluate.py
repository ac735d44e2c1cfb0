"""mmcli evaluate MODEL DATA --out DIR [--fail-under METRIC=VALUE]"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli._common import (
    ConfigOpt,
    DebugOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    WaitOpt,
    error,
    execute,
)
from mmcli.errors import EXIT_GATE


def command(
    model: Annotated[Path | None, typer.Argument(help="A train artifact.")] = None,
    data: Annotated[
        Path | None,
        typer.Argument(help="The artifact it was trained on (fuse, or preprocess for e2e models)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output artifact folder. (default: eval)")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="train, val, test or all. (default: test)")
    ] = None,
    fail_under: Annotated[
        list[str] | None,
        typer.Option(
            help="METRIC=VALUE: exit with code 5 when the metric is below VALUE (above, for mae/rmse/log_loss). Repeatable or comma-separated."
        ),
    ] = None,
    config: ConfigOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Score a model: metrics.json, a confusion matrix, a Markdown report, and CI gates."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli import config as cfgs
        from mmcli.stages import evaluate

        cfg = cfgs.build(
            cfgs.EvaluateConfig,
            {
                "wait": wait or None,
                "model": model,
                "data": data,
                "out": out,
                "split": split,
                "fail_under": fail_under,
            },
            config,
        )
        return evaluate.run(cfg, progress=progress, force=force)

    summary = execute("evaluate", action, json_out=json_out, quiet=quiet, debug=debug)
    if not summary["gates"]["passed"]:
        for failure in summary["gates"]["failures"]:
            error(f"quality gate failed: {failure}")
        raise typer.Exit(EXIT_GATE)
