"""mmcli train DATA --out DIR"""

from __future__ import annotations

from mmcli.cli._stage import Hook, Stage
from mmcli.errors import UsageError


def _channels(text: str, flag: str) -> list[int]:
    """``--conv-channels 16,32,64`` -> ``[16, 32, 64]``."""
    try:
        return [int(c) for c in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected numbers like 16,32,64") from None


STAGE = Stage(
    "train",
    config="TrainConfig",
    doc="Train a model, early-stopped on the val split: a head on fused features, "
    "or CNN/RNN towers end to end.",
    hooks={"conv_channels": Hook(str, _channels)},
)
command = STAGE.command()
