"""mmcli fuse FEATS --out DIR"""

from __future__ import annotations

from typing import Any

from mmcli.cli._common import Reporter, parse_pairs
from mmcli.cli._stage import Hook, Stage
from mmcli.errors import UsageError


def _run(cfg: Any, progress: Reporter, force: bool) -> dict[str, Any]:
    from mmcli.stages import fuse

    return fuse.run(cfg, progress=progress, force=force)


def _weights(items: list[str], flag: str) -> dict[str, float] | None:
    """``--weights image=1,text=0.5`` (repeatable) -> ``{"image": 1.0, "text": 0.5}``."""
    pairs = parse_pairs(items, "=", flag)
    try:
        return None if pairs is None else {k: float(v) for k, v in pairs.items()}
    except ValueError:
        raise UsageError(f"{flag}: every weight must be a number, got {pairs}") from None


STAGE = Stage(
    "fuse",
    config="FuseConfig",
    run=_run,
    doc="Normalise and combine the per-column features into one matrix (concat or weighted sum).",
    hooks={"weights": Hook(list[str], _weights)},
)
command = STAGE.command()
