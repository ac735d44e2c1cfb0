"""mmcli preprocess MANIFEST --out DIR"""

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
    parse_pairs,
)


def command(
    manifest: Annotated[
        Path | None, typer.Argument(help="CSV, Parquet or JSONL table, one row per sample.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output artifact folder. (default: prep)")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column. (default: label)")] = None,
    task: Annotated[
        str | None, typer.Option(help="auto, classification or regression. (default: auto)")
    ] = None,
    input_: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            help="COLUMN:TYPE (image, audio, video, text, number, category, ignore); repeatable; overrides inference.",
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(help="Column of sample ids (not a feature). (default: id, if present)"),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder that relative paths resolve against and no path may leave. (default: the manifest's folder)"
        ),
    ] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Images are resized to SIZE x SIZE. (default: 64)")
    ] = None,
    sample_rate: Annotated[
        int | None, typer.Option(help="Audio is resampled to this rate in Hz. (default: 16000)")
    ] = None,
    audio_seconds: Annotated[
        float | None,
        typer.Option(help="Audio is trimmed or zero-padded to this length. (default: 2.0)"),
    ] = None,
    video_frames: Annotated[
        int | None,
        typer.Option(
            help="Frames sampled uniformly over each video clip (a shorter clip repeats frames). (default: 8)"
        ),
    ] = None,
    video_max_seconds: Annotated[
        float | None,
        typer.Option(
            help="Video clips longer than this are refused from their header, before decoding. (default: 120)"
        ),
    ] = None,
    val_fraction: Annotated[
        float | None, typer.Option(help="Share of rows for validation. (default: 0.15)")
    ] = None,
    test_fraction: Annotated[
        float | None, typer.Option(help="Share of rows for test. (default: 0.15)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split. (default: 0)")] = None,
    on_error: Annotated[
        str | None,
        typer.Option(
            help="A bad cell: skip the row (listed in rejected.parquet), fail at once, or keep the row with that value missing. (default: skip)"
        ),
    ] = None,
    max_errors: Annotated[
        float | None,
        typer.Option(
            help="Fail (exit 3) when more rows are rejected than this: a count, or a fraction below 1."
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
    """Validate the manifest, decode and resize every file, split train/val/test."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli import config as cfgs
        from mmcli.stages import preprocess

        cfg = cfgs.build(
            cfgs.PreprocessConfig,
            {
                "wait": wait or None,
                "workers": workers,
                "shard": shard,
                "manifest": manifest,
                "out": out,
                "target": target,
                "task": task,
                "inputs": parse_pairs(input_, ":", "--input"),
                "id_column": id_column,
                "data_root": data_root,
                "image_size": image_size,
                "sample_rate": sample_rate,
                "audio_seconds": audio_seconds,
                "video_frames": video_frames,
                "video_max_seconds": video_max_seconds,
                "val_fraction": val_fraction,
                "test_fraction": test_fraction,
                "seed": seed,
                "on_error": on_error,
                "max_errors": max_errors,
            },
            config,
        )
        return preprocess.run(cfg, progress=progress, force=force)

    execute("preprocess", action, json_out=json_out, quiet=quiet, debug=debug)
