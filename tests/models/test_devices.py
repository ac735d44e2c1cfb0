"""Every network runs on a device other than the CPU: a forward (and backward) pass on
torch's ``meta`` device, which has shapes but no data. A tensor built on the CPU inside
``forward`` (a mask, a random draw) fails here as it would on ``--device cuda``."""

from __future__ import annotations

import pytest
import torch

from mmcli.models import build_model
from mmcli.models.fusion import FUSIONS

META = torch.device("meta")
B = 5

# One column of every tower kind, with what its input looks like (shape, dtype).
COLUMNS = [
    ({"name": "photo", "tower": "image-cnn", "channels": [8, 16]}, (B, 32, 32, 3), torch.uint8),
    (
        {"name": "clip", "tower": "video-cnn", "channels": [8], "temporal": "pool"},
        (B, 3, 16, 16, 3),
        torch.uint8,
    ),
    (
        {"name": "film", "tower": "video-cnn", "channels": [8], "temporal": "gru"},
        (B, 3, 16, 16, 3),
        torch.uint8,
    ),
    (
        {
            "name": "caption",
            "tower": "text-rnn",
            "vocab": ["<pad>", "<unk>", "a", "b"],
            "embed_dim": 8,
            "hidden": 8,
            "rnn": "gru",
        },
        (B, 7),
        torch.long,
    ),
    (
        {
            "name": "notes",
            "tower": "text-rnn",
            "vocab": ["<pad>", "<unk>", "a"],
            "embed_dim": 8,
            "hidden": 8,
            "rnn": "lstm",
        },
        (B, 7),
        torch.long,
    ),
    ({"name": "voice", "tower": "audio-cnn", "channels": [8, 16]}, (B, 40, 51), torch.float32),
    ({"name": "source", "tower": "category", "categories": ["web", "phone"]}, (B,), torch.long),
    ({"name": "size", "tower": "dense", "dim": 1}, (B,), torch.float32),
    ({"name": "features", "tower": "dense", "dim": 12}, (B, 12), torch.float32),
]


def _on_meta(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device=META)


@pytest.mark.parametrize("head", ["mlp", "logistic"])
@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_every_tower_and_fusion_runs_on_the_meta_device_with_modality_dropout(fusion, head):
    architecture = {
        "family": "e2e",
        "columns": [spec for spec, _, _ in COLUMNS],
        "width": 16,
        "fusion": fusion,
        "modality_dropout": 0.5,
        "head": {"model": head, "hidden": 8, "dropout": 0.2},
        "out_dim": 3,
    }
    model = build_model(architecture).to(META)
    model.train()  # modality dropout and batch norm's batch statistics are on
    inputs = [_on_meta(shape, dtype) for _, shape, dtype in COLUMNS]
    mask = _on_meta((B, len(COLUMNS)), torch.float32)
    out = model(*inputs, mask)
    assert out.device == META and out.shape == (B, 3)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.device == META for p in model.parameters())
    model.eval()
    assert model(*inputs, mask).shape == (B, 3)


def test_heads_late_fusion_and_the_ensemble_run_on_the_meta_device():
    blocks = [
        {"name": "a", "dim": 4, "start": 0, "stop": 4},
        {"name": "b", "dim": 3, "start": 4, "stop": 7},
    ]
    late = {"family": "late", "task": "classification", "out_dim": 3, "columns": blocks}
    head = {
        "family": "head",
        "in_dim": 9,
        "out_dim": 3,
        "model": "mlp",
        "hidden": 8,
        "dropout": 0.2,
    }
    ensemble = {
        "family": "ensemble",
        "task": "classification",
        "out_dim": 3,
        "mask": [7, 9],
        "members": [head, late],
    }
    x = _on_meta((B, 9), torch.float32)
    for architecture in (head, ensemble):
        model = build_model(architecture).to(META)
        assert model(x).shape == (B, 3) and model(x).device == META
    model = build_model(late).to(META)
    out = model(x[:, :4], x[:, 4:7], x[:, 7:9])
    assert out.shape == (B, 3) and out.device == META
