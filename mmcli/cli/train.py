"""mmcli train FUSED --out DIR"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli._common import ConfigOpt, DebugOpt, ForceOpt, JsonOpt, QuietOpt, execute


def command(
    data: Annotated[Path | None, typer.Argument(help="A fuse artifact.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output artifact folder. (default: model)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="logistic or mlp. (default: mlp)")] = None,
    hidden: Annotated[int | None, typer.Option(help="MLP hidden width. (default: 128)")] = None,
    dropout: Annotated[float | None, typer.Option(help="MLP dropout. (default: 0.2)")] = None,
    epochs: Annotated[
        int | None, typer.Option(help="At most this many epochs. (default: 200)")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Rows per step. (default: 64)")] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW learning rate. (default: 0.001)")] = None,
    weight_decay: Annotated[
        float | None, typer.Option(help="AdamW weight decay. (default: 0.0001)")
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option(help="Stop after this many epochs without a better val loss. (default: 20)"),
    ] = None,
    class_weight: Annotated[
        str | None,
        typer.Option(
            help="none or balanced (weights inversely proportional to class counts). (default: none)"
        ),
    ] = None,
    loss: Annotated[
        str | None, typer.Option(help="auto, cross-entropy, mse or huber. (default: auto)")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of initialisation and shuffling. (default: 0)")
    ] = None,
    config: ConfigOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Train a classifier or regressor on fused features, early-stopped on the val split."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli import config as cfgs
        from mmcli.stages import train

        cfg = cfgs.build(
            cfgs.TrainConfig,
            {
                "data": data,
                "out": out,
                "model": model,
                "hidden": hidden,
                "dropout": dropout,
                "epochs": epochs,
                "batch_size": batch_size,
                "lr": lr,
                "weight_decay": weight_decay,
                "patience": patience,
                "class_weight": class_weight,
                "loss": loss,
                "seed": seed,
            },
            config,
        )
        return train.run(cfg, progress=progress, force=force)

    execute("train", action, json_out=json_out, quiet=quiet, debug=debug)
