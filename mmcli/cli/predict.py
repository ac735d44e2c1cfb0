"""mmcli predict MODEL TABLE --out FILE"""

from __future__ import annotations

from typing import Any

from mmcli.cli._common import Reporter
from mmcli.cli._stage import Stage


def _run(cfg: Any, progress: Reporter, force: bool) -> dict[str, Any]:
    from mmcli.stages import predict

    return predict.run(cfg, progress=progress)  # no --force: predict has no up-to-date check


STAGE = Stage(
    "predict",
    config="PredictConfig",
    run=_run,
    doc="Predict new rows with the model's whole fitted chain; nothing is refitted.",
    common=("config", "json_out", "quiet", "debug"),
)
command = STAGE.command()
