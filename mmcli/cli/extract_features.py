"""mmcli extract-features PREP --out DIR"""

from __future__ import annotations

from typing import Any

from mmcli.cli._common import Reporter
from mmcli.cli._stage import Stage


def _run(cfg: Any, progress: Reporter, force: bool) -> dict[str, Any]:
    from mmcli.stages import extract_features

    return extract_features.run(cfg, progress=progress, force=force)


STAGE = Stage(
    "extract-features",
    config="ExtractConfig",
    run=_run,
    doc="Turn each input column into a fixed-size vector per row (encoders fitted on train only).",
)
command = STAGE.command()
