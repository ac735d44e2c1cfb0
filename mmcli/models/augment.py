"""Per-sample augmentation for training, seeded per (seed, epoch, row).

Seeding by row rather than by batch order makes the result the same whatever the number
of data-loader workers. Inputs are the tensors of one row, in architecture order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def _image(x: Tensor, g: torch.Generator) -> Tensor:
    # x: uint8 (H, W, 3). Flip, shift by up to 1/8 (a crop with zero padding), jitter colour.
    if torch.rand(1, generator=g) < 0.5:
        x = x.flip(1)
    h, w = x.shape[:2]
    dy, dx = (torch.randint(-(h // 8), h // 8 + 1, (2,), generator=g)).tolist()
    x = torch.roll(x, shifts=(dy, dx), dims=(0, 1))
    scale = 1.0 + (torch.rand(1, generator=g).item() - 0.5) * 0.4
    shift = (torch.rand(1, generator=g).item() - 0.5) * 40
    return (x.float() * scale + shift).clamp(0, 255).to(torch.uint8)


def _audio(x: Tensor, g: torch.Generator) -> Tensor:
    # x: log-mel (n_mels, frames). Gain is a shift in the log domain; noise; SpecAugment masks.
    x = x + (torch.rand(1, generator=g).item() - 0.5) * 1.0
    x = x + torch.randn(x.shape, generator=g) * 0.1
    n_mels, frames = x.shape
    f = int(torch.randint(0, max(1, n_mels // 8), (1,), generator=g))
    f0 = int(torch.randint(0, n_mels - f + 1, (1,), generator=g))
    t = int(torch.randint(0, max(1, frames // 10), (1,), generator=g))
    t0 = int(torch.randint(0, frames - t + 1, (1,), generator=g))
    x = x.clone()
    x[f0 : f0 + f, :] = x.mean()
    x[:, t0 : t0 + t] = x.mean()
    return x


def _video(x: Tensor, g: torch.Generator) -> Tensor:
    # x: uint8 (K, H, W, 3). The same flip, shift and jitter on every frame (the generator
    # is rewound for each), so the clip stays one coherent scene.
    start = g.get_state()
    frames = []
    for frame in x:
        g.set_state(start)
        frames.append(_image(frame, g))
    return torch.stack(frames)


def _text(x: Tensor, g: torch.Generator, p: float = 0.1) -> Tensor:
    # x: ids (L,). Token dropout: some real tokens become <unk> (id 1).
    drop = (torch.rand(x.shape, generator=g) < p) & (x != 0)
    return torch.where(drop, torch.ones_like(x), x)


AUGMENT = {"image-cnn": _image, "video-cnn": _video, "audio-cnn": _audio, "text-rnn": _text}


def augment_row(
    row: list[Tensor], towers: list[str], seed: int, epoch: int, index: int
) -> list[Tensor]:
    """Augment one row's column tensors (the mask, last, is left alone)."""
    g = torch.Generator().manual_seed(hash((seed, epoch, index)) & 0x7FFFFFFFFFFFFFFF)
    out = [AUGMENT[t](x, g) if t in AUGMENT else x for x, t in zip(row[:-1], towers, strict=True)]
    return [*out, row[-1]]


def minority_rows(targets: Any, train_idx: Any) -> set[int]:
    """Rows of classes whose train count is below the median count."""
    import numpy as np

    classes, counts = np.unique(targets[train_idx], return_counts=True)
    small = set(classes[counts < np.median(counts)].tolist())
    return {int(i) for i in train_idx if targets[i] in small}
