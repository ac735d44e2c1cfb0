"""mmcli fuse FEATS --out DIR"""

from __future__ import annotations

from mmcli.cli._common import parse_pairs
from mmcli.cli._stage import Hook, Stage
from mmcli.errors import UsageError


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
    doc="Normalise and combine the per-column features into one matrix (concat or weighted sum).",
    hooks={"weights": Hook(list[str], _weights)},
)
command = STAGE.command()
