"""mmcli preprocess MANIFEST --out DIR"""

from __future__ import annotations

from typing import Any

from mmcli.cli._common import Reporter, parse_pairs
from mmcli.cli._stage import Hook, Stage


def _run(cfg: Any, progress: Reporter, force: bool) -> dict[str, Any]:
    from mmcli.stages import preprocess

    return preprocess.run(cfg, progress=progress, force=force)


STAGE = Stage(
    "preprocess",
    config="PreprocessConfig",
    run=_run,
    doc="Validate the manifest, decode and resize every file, split train/val/test.",
    # --input COLUMN:TYPE, repeatable or comma-joined
    hooks={"inputs": Hook(list[str], lambda items, flag: parse_pairs(items, ":", flag))},
)
command = STAGE.command()
