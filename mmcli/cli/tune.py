"""mmcli tune DATA --out DIR [--trials N] [--folds K]"""

from __future__ import annotations

from mmcli.cli._stage import Stage

STAGE = Stage(
    "tune",
    config="TuneConfig",
    doc="Search train's hyperparameters (Optuna, seeded) on the val split or K folds; "
    "writes the trials and the best as a config for train --config.",
)
command = STAGE.command()
