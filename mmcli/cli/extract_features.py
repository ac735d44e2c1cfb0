"""mmcli extract-features PREP --out DIR"""

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
    ShardOpt,
    WaitOpt,
    WorkersOpt,
    execute,
)


def command(
    prep: Annotated[Path | None, typer.Argument(help="A preprocess artifact.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output artifact folder. (default: feats)")
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            help="Image encoder: stats, pixels or efficientnet-lite0 (pretrained extra; preprocess with --image-size 224). `mmcli encoders` lists them. (default: stats)"
        ),
    ] = None,
    audio: Annotated[
        str | None,
        typer.Option(
            help="Audio encoder: mfcc, logmel or resemblyzer (pretrained extra). (default: mfcc)"
        ),
    ] = None,
    text: Annotated[
        str | None,
        typer.Option(
            help="Text encoder: tfidf, hashing or minilm (pretrained extra). (default: tfidf)"
        ),
    ] = None,
    video: Annotated[
        str | None,
        typer.Option(
            help="Image encoder applied to every sampled frame of a video column. (default: stats)"
        ),
    ] = None,
    video_pool: Annotated[
        str | None,
        typer.Option(
            help="Frame features pooled over time: mean, or meanstd (mean and std). (default: meanstd)"
        ),
    ] = None,
    workers: WorkersOpt = None,
    shard: ShardOpt = None,
    config: ConfigOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Turn each input column into a fixed-size vector per row (encoders fitted on train only)."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli import config as cfgs
        from mmcli.stages import extract_features

        cfg = cfgs.build(
            cfgs.ExtractConfig,
            {
                "wait": wait or None,
                "workers": workers,
                "shard": shard,
                "prep": prep,
                "out": out,
                "image": image,
                "audio": audio,
                "text": text,
                "video": video,
                "video_pool": video_pool,
            },
            config,
        )
        return extract_features.run(cfg, progress=progress, force=force)

    execute("extract-features", action, json_out=json_out, quiet=quiet, debug=debug)
