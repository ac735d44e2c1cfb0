"""mmcli extract-features PREP --out DIR"""

from __future__ import annotations

from mmcli.cli._stage import Stage

STAGE = Stage(
    "extract-features",
    config="ExtractConfig",
    doc="Turn each input column into a fixed-size vector per row (encoders fitted on train only).",
)
command = STAGE.command()
