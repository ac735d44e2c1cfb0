"""mmcli predict MODEL TABLE --out FILE"""

from __future__ import annotations

from mmcli.cli._stage import Stage

STAGE = Stage(
    "predict",
    config="PredictConfig",
    doc="Predict new rows with the model's whole fitted chain; nothing is refitted.",
    common=("config", "json_out", "quiet", "debug"),
)
command = STAGE.command()
