"""A simple ensemble: the mean of several models' predictions on one fused matrix.

    classification:  log( mean_m softmax(member_m(x)) )   (class probabilities averaged)
    regression:      mean_m member_m(x)

Members are heads (which read the whole fused matrix) and late fusion (which reads each
column's block and the presence flags, sliced here from the same matrix: fuse always ends
it with them). So the ensemble reads ``[X]``, as a head does, and ``predict``,
``evaluate`` and column masking treat it like one. Nothing is fitted at this level: the
members are fitted alone, and averaging adds no weight that could fit the val split.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class EnsembleNet(nn.Module):
    """forward(x) -> (B, out_dim); ``architecture["members"]`` are head or late architectures."""

    def __init__(self, architecture: dict[str, Any]):
        super().__init__()
        from mmcli.models import build_model

        self.classification = architecture["task"] == "classification"
        self.members = nn.ModuleList([build_model(m) for m in architecture["members"]])
        self.slices = [
            None
            if m["family"] == "head"
            else [(c["start"], c["stop"]) for c in m["columns"]] + [tuple(architecture["mask"])]
            for m in architecture["members"]
        ]

    def forward(self, x: Tensor) -> Tensor:
        outs = []
        for member, slices in zip(self.members, self.slices, strict=True):
            out = member(x) if slices is None else member(*(x[:, a:b] for a, b in slices))
            outs.append(torch.softmax(out, dim=1) if self.classification else out)
        mean = torch.stack(outs).mean(dim=0)
        return torch.log(mean.clamp_min(1e-12)) if self.classification else mean
