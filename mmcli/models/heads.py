"""Heads on a fused feature matrix: logistic regression and a one-hidden-layer MLP.

The input is already standardised per column by ``fuse`` (and ends with the 0/1
presence flags), so no normalisation layer is needed here.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class Head(nn.Module):
    """``logistic``: x -> Linear -> logits. ``mlp``: x -> Linear -> ReLU -> Dropout -> Linear."""

    def __init__(
        self, in_dim: int, out_dim: int, model: str = "mlp", hidden: int = 128, dropout: float = 0.2
    ):
        super().__init__()
        if model == "logistic":
            self.net: nn.Module = nn.Linear(in_dim, out_dim)
        else:
            self.net = nn.Sequential(
                nn.Linear(in_dim, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, out_dim),
            )

    def forward(self, x: Tensor) -> Tensor:
        # (batch, in_dim) -> (batch, out_dim): class logits, or one value for regression
        return self.net(x)


def build(architecture: dict[str, Any]) -> nn.Module:
    """Rebuild a head from the architecture dict stored in the model artifact."""
    return Head(
        architecture["in_dim"],
        architecture["out_dim"],
        architecture["model"],
        architecture["hidden"],
        architecture["dropout"],
    )
