"""mmcli merge SHARD... --out DIR"""

from __future__ import annotations

from mmcli.cli._stage import Stage

STAGE = Stage(
    "merge",
    config="MergeConfig",
    doc="Join the shards of a `--shard K/N` run into the artifact one run would have written.",
    common=("force", "wait", "json_out", "quiet", "debug"),  # no --config: SHARD... and --out
)
command = STAGE.command()
