"""Torch modules, one readable file per family, and the loop that trains them."""

from __future__ import annotations

from typing import Any


def build_model(architecture: dict[str, Any]) -> Any:
    """The torch module an architecture describes."""
    if architecture["family"] == "head":
        from mmcli.models import heads

        return heads.build(architecture)
    if architecture["family"] == "late":
        from mmcli.models.late import LateFusionNet

        return LateFusionNet(architecture)
    if architecture["family"] == "ensemble":
        from mmcli.models.ensemble import EnsembleNet

        return EnsembleNet(architecture)
    from mmcli.models.multimodal import MultimodalNet

    return MultimodalNet(architecture)
