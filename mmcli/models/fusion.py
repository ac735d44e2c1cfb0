"""Fusion layers: combine per-column embeddings (B, M, width) with a presence mask (B, M).

A missing column's embedding never reaches the output: concat zeroes it, the others give
it no weight. ``--modality-dropout`` works by switching mask entries off in training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_MASKED = -1e9  # not -inf: a row with every column missing must not turn into NaN


class ConcatFusion(nn.Module):
    """(B, M, W) -> (B, M*W), missing columns zeroed."""

    def __init__(self, n_columns: int, width: int):
        super().__init__()
        self.out_dim = n_columns * width

    def forward(self, emb: Tensor, mask: Tensor) -> Tensor:
        return (emb * mask.unsqueeze(-1)).flatten(1)


class WeightedSumFusion(nn.Module):
    """One learned scalar per column; softmax over the present columns -> weighted sum (B, W)."""

    def __init__(self, n_columns: int, width: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_columns))
        self.out_dim = width

    def weights(self) -> Tensor:
        return torch.softmax(self.logits.detach(), dim=0)

    def forward(self, emb: Tensor, mask: Tensor) -> Tensor:
        logits = self.logits.expand_as(mask).masked_fill(mask == 0, _MASKED)
        w = torch.softmax(logits, dim=1) * mask  # all-missing rows: weights 0, output 0
        return (w.unsqueeze(-1) * emb).sum(1)


class GatedFusion(nn.Module):
    """Per-sample gates from all embeddings: g = sigmoid(Linear(concat)); sum of g * emb (B, W)."""

    def __init__(self, n_columns: int, width: int):
        super().__init__()
        self.gate = nn.Linear(n_columns * width, n_columns)
        self.out_dim = width

    def forward(self, emb: Tensor, mask: Tensor) -> Tensor:
        emb = emb * mask.unsqueeze(-1)
        g = torch.sigmoid(self.gate(emb.flatten(1))) * mask
        return (g.unsqueeze(-1) * emb).sum(1) / g.sum(1, keepdim=True).clamp(min=1e-6)


class AttentionFusion(nn.Module):
    """A learned summary token attends over the present columns (one multi-head layer) -> (B, W)."""

    def __init__(self, n_columns: int, width: int, heads: int = 4):
        super().__init__()
        self.summary = nn.Parameter(torch.zeros(1, 1, width))
        self.column = nn.Parameter(torch.randn(1, n_columns, width) * 0.02)  # which column is which
        self.attn = nn.MultiheadAttention(
            width, heads if width % heads == 0 else 1, batch_first=True
        )
        self.norm = nn.LayerNorm(width)
        self.out_dim = width

    def forward(self, emb: Tensor, mask: Tensor) -> Tensor:
        b = emb.shape[0]
        tokens = torch.cat([self.summary.expand(b, -1, -1), emb + self.column], dim=1)
        # The summary token is always present, so no row is all padding.
        padding = torch.cat(
            [torch.zeros(b, 1, dtype=torch.bool, device=mask.device), mask == 0], dim=1
        )
        out, _ = self.attn(tokens[:, :1], tokens, tokens, key_padding_mask=padding)
        return self.norm(out[:, 0] + self.summary[:, 0])


FUSIONS = {
    "concat": ConcatFusion,
    "weighted-sum": WeightedSumFusion,
    "gated": GatedFusion,
    "attention": AttentionFusion,
}
