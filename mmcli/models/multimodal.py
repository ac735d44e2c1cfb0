"""The multimodal network: a tower per input column, a fusion layer, a head.

    column inputs ──tower──▶ (B, width) each ─stack─▶ (B, M, width) ─fusion(mask)─▶ head ─▶ logits

Used end to end on preprocessed tensors (CNN for images, RNN for text, CNN over log-mel
for audio) and on the per-column blocks of a fuse artifact (a dense tower per block).
``forward`` takes one tensor per column, in architecture order, then the (B, M) mask.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mmcli.models.fusion import FUSIONS
from mmcli.models.towers import build_tower


class MultimodalNet(nn.Module):
    def __init__(self, architecture: dict[str, Any]):
        super().__init__()
        columns, width = architecture["columns"], architecture["width"]
        # ModuleDict keys cannot hold dots, and column names can: index them instead.
        self.towers = nn.ModuleList([build_tower(c, width) for c in columns])
        self.fusion = FUSIONS[architecture["fusion"]](len(columns), width)
        self.modality_dropout = float(architecture.get("modality_dropout", 0.0))
        head = architecture["head"]
        if head["model"] == "logistic":
            self.head: nn.Module = nn.Linear(self.fusion.out_dim, architecture["out_dim"])
        else:
            self.head = nn.Sequential(
                nn.Linear(self.fusion.out_dim, head["hidden"]),
                nn.ReLU(),
                nn.Dropout(head["dropout"]),
                nn.Linear(head["hidden"], architecture["out_dim"]),
            )

    def forward(self, *inputs: Tensor) -> Tensor:
        *columns, mask = inputs
        mask = mask.float()
        if self.training and self.modality_dropout > 0:
            # Drop whole columns at random so the model does not lean on any single one.
            keep = (torch.rand(mask.shape, device=mask.device) >= self.modality_dropout).float()
            mask = mask * keep
        emb = torch.stack([tower(x) for tower, x in zip(self.towers, columns, strict=True)], 1)
        return self.head(self.fusion(emb, mask))

    def fusion_weights(self) -> list[float] | None:
        """Learned per-column weights of weighted-sum fusion (None for other fusions)."""
        weights = getattr(self.fusion, "weights", None)
        return None if weights is None else [round(float(w), 6) for w in weights()]
