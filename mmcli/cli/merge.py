"""mmcli merge SHARD... --out DIR"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli._common import DebugOpt, ForceOpt, JsonOpt, QuietOpt, WaitOpt, execute


def command(
    shards: Annotated[
        list[Path],
        typer.Argument(
            metavar="SHARD...",
            help="The N shard artifacts of one preprocess or extract-features run.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output artifact folder.")],
    force: ForceOpt = False,
    wait: WaitOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Join the shards of a `--shard K/N` run into the artifact one run would have written."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli import config as cfgs
        from mmcli.stages import merge

        cfg = cfgs.build(
            cfgs.MergeConfig, {"shards": shards, "out": out, "wait": wait or None}, None
        )
        return merge.run(cfg, progress=progress, force=force)

    execute("merge", action, json_out=json_out, quiet=quiet, debug=debug)
