"""mmcli merge SHARD... --out DIR"""

from __future__ import annotations

from typing import Any

from mmcli.cli._common import Reporter
from mmcli.cli._stage import Stage


def _run(cfg: Any, progress: Reporter, force: bool) -> dict[str, Any]:
    from mmcli.stages import merge

    return merge.run(cfg, progress=progress, force=force)


STAGE = Stage(
    "merge",
    config="MergeConfig",
    run=_run,
    doc="Join the shards of a `--shard K/N` run into the artifact one run would have written.",
    common=("force", "wait", "json_out", "quiet", "debug"),  # no --config: SHARD... and --out
)
command = STAGE.command()
