"""mmcli train DATA --out DIR"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli._common import ConfigOpt, DebugOpt, ForceOpt, JsonOpt, QuietOpt, WaitOpt, execute


def command(
    data: Annotated[
        Path | None,
        typer.Argument(
            help="A fuse artifact (heads, learned fusion over its blocks) or a preprocess artifact (--model e2e)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output artifact folder. (default: model)")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="logistic, mlp (on a fuse artifact) or e2e (CNN/RNN towers on a preprocess artifact). (default: mlp on fuse, e2e on preprocess)"
        ),
    ] = None,
    fusion: Annotated[
        str | None,
        typer.Option(
            help="Fusion inside the model: none, concat, weighted-sum, gated or attention. (default: none on fuse, concat for e2e)"
        ),
    ] = None,
    hidden: Annotated[
        int | None, typer.Option(help="Hidden width of the MLP head. (default: 128)")
    ] = None,
    dropout: Annotated[
        float | None, typer.Option(help="Dropout of the MLP head. (default: 0.2)")
    ] = None,
    width: Annotated[
        int | None, typer.Option(help="Embedding width of each column tower. (default: 64)")
    ] = None,
    conv_channels: Annotated[
        str | None,
        typer.Option(
            help="Channels of each conv block of the image and audio CNNs; the count is the depth. (default: 16,32,64)"
        ),
    ] = None,
    rnn: Annotated[
        str | None, typer.Option(help="Text tower cell: gru or lstm. (default: gru)")
    ] = None,
    rnn_hidden: Annotated[
        int | None, typer.Option(help="Text RNN hidden size per direction. (default: 64)")
    ] = None,
    video_temporal: Annotated[
        str | None,
        typer.Option(
            help="Video tower over its frames' CNN features: pool (mean over time) or gru. (default: pool)"
        ),
    ] = None,
    embed_dim: Annotated[
        int | None, typer.Option(help="Word embedding size. (default: 64)")
    ] = None,
    text_max_len: Annotated[
        int | None, typer.Option(help="Tokens kept per text. (default: 32)")
    ] = None,
    modality_dropout: Annotated[
        float | None,
        typer.Option(help="Drop each whole column with this probability in training. (default: 0)"),
    ] = None,
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
            help="none or balanced (loss weights inversely proportional to class counts). (default: none)"
        ),
    ] = None,
    sampler: Annotated[
        str | None,
        typer.Option(
            help="shuffle, or weighted (draw rows so classes come equally often). (default: shuffle)"
        ),
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option(
            help="none, all, or minority (only classes below the median count): image flips/shifts/colour, audio gain/noise/masks, text token dropout. (default: none)"
        ),
    ] = None,
    loss: Annotated[
        str | None, typer.Option(help="auto, cross-entropy, mse or huber. (default: auto)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Data-loader worker processes for augmentation; results do not depend on it. (default: 0)"
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="auto, cpu, cuda or mps; auto picks an accelerator when there is one. Under "
            "torchrun, training runs data-parallel over its processes. (default: auto)"
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of initialisation, shuffling and augmentation. (default: 0)"),
    ] = None,
    config: ConfigOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Train a model, early-stopped on the val split: a head on fused features, or CNN/RNN towers end to end."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli import config as cfgs
        from mmcli.stages import train

        flags = {
            "data": data,
            "out": out,
            "model": model,
            "fusion": fusion,
            "hidden": hidden,
            "dropout": dropout,
            "width": width,
            "rnn": rnn,
            "conv_channels": _channels(conv_channels),
            "rnn_hidden": rnn_hidden,
            "video_temporal": video_temporal,
            "embed_dim": embed_dim,
            "text_max_len": text_max_len,
            "modality_dropout": modality_dropout,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "weight_decay": weight_decay,
            "patience": patience,
            "class_weight": class_weight,
            "sampler": sampler,
            "augment": augment,
            "loss": loss,
            "workers": workers,
            "device": device,
            "seed": seed,
            "wait": wait or None,
        }
        return train.run(
            cfgs.build(cfgs.TrainConfig, flags, config), progress=progress, force=force
        )

    execute("train", action, json_out=json_out, quiet=quiet, debug=debug)


def _channels(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(c) for c in text.split(",")]
    except ValueError:
        from mmcli.errors import UsageError

        raise UsageError(f"--conv-channels {text!r}: expected numbers like 16,32,64") from None
