"""mmcli preprocess MANIFEST --out DIR"""

from __future__ import annotations

from mmcli.cli._common import parse_pairs
from mmcli.cli._stage import Hook, Stage

STAGE = Stage(
    "preprocess",
    config="PreprocessConfig",
    doc="Validate the manifest, decode and resize every file, split train/val/test.",
    # --input COLUMN:TYPE, repeatable or comma-joined
    hooks={"inputs": Hook(list[str], lambda items, flag: parse_pairs(items, ":", flag))},
)
command = STAGE.command()
