"""mmcli predict MODEL TABLE --out FILE"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli._common import ConfigOpt, DebugOpt, JsonOpt, QuietOpt, execute


def command(
    model: Annotated[Path | None, typer.Argument(help="A train artifact.")] = None,
    table: Annotated[
        Path | None,
        typer.Argument(
            help="New rows: CSV, Parquet or JSONL with the training columns (the target may be absent)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Predictions file; its extension picks CSV, Parquet or JSONL. (default: predictions.csv)",
        ),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder that relative paths resolve against. (default: the table's folder)"
        ),
    ] = None,
    on_error: Annotated[
        str | None,
        typer.Option(
            help="A bad cell: skip the row (its error is in the output), fail, or keep it with that value missing. (default: skip)"
        ),
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Predict new rows with the model's whole fitted chain; nothing is refitted."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli import config as cfgs
        from mmcli.stages import predict

        cfg = cfgs.build(
            cfgs.PredictConfig,
            {
                "model": model,
                "table": table,
                "out": out,
                "data_root": data_root,
                "on_error": on_error,
            },
            config,
        )
        return predict.run(cfg, progress=progress)

    execute("predict", action, json_out=json_out, quiet=quiet, debug=debug)
