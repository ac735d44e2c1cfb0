"""mmcli fuse FEATS --out DIR"""

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
    execute,
    parse_pairs,
)
from mmcli.errors import UsageError


def command(
    feats: Annotated[Path | None, typer.Argument(help="An extract-features artifact.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output artifact folder. (default: fused)")
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="concat or weighted-sum. (default: concat)")
    ] = None,
    weights: Annotated[
        list[str] | None,
        typer.Option(help="Per-column weights, e.g. image=1,text=0.5 (default: 1 each)."),
    ] = None,
    width: Annotated[
        int | None,
        typer.Option(help="Common width columns are projected to for weighted-sum. (default: 64)"),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the weighted-sum projections. (default: 0)")
    ] = None,
    config: ConfigOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Normalise and combine the per-column features into one matrix (concat or weighted sum)."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli import config as cfgs
        from mmcli.stages import fuse

        pairs = parse_pairs(weights, "=", "--weights")
        try:
            parsed = None if pairs is None else {k: float(v) for k, v in pairs.items()}
        except ValueError:
            raise UsageError(f"--weights: every weight must be a number, got {pairs}") from None
        cfg = cfgs.build(
            cfgs.FuseConfig,
            {
                "wait": wait or None,
                "feats": feats,
                "out": out,
                "method": method,
                "weights": parsed,
                "width": width,
                "seed": seed,
            },
            config,
        )
        return fuse.run(cfg, progress=progress, force=force)

    execute("fuse", action, json_out=json_out, quiet=quiet, debug=debug)
