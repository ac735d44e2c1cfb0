"""One small network per input column, each ending in a vector of size ``width``.

Shapes are noted as (batch, ...). Every tower is cheap enough to train on a 2-core CPU
at the default sizes: the point is a sound, readable baseline, not a record.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn


def _conv_stack(c_in: int, channels: tuple[int, ...]) -> nn.Sequential:
    """conv/BN/ReLU/max-pool blocks; the first conv has stride 2, which quarters the work
    of every later layer on a CPU at little cost in accuracy for 32-128 pixel inputs."""
    layers = []
    for i, c_out in enumerate(channels):
        layers += [
            nn.Conv2d(c_in, c_out, 3, stride=2 if i == 0 else 1, padding=1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
        ]
        c_in = c_out
    return nn.Sequential(*layers)


class ImageCNN(nn.Module):
    """uint8 (B, H, W, 3) -> three conv/BN/ReLU/max-pool blocks -> global average -> (B, width)."""

    def __init__(self, width: int, channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.features = _conv_stack(3, channels)
        self.out = nn.Linear(channels[-1], width)

    def forward(self, images: Tensor) -> Tensor:
        x = images.permute(0, 3, 1, 2).float() / 255.0 - 0.5  # channels first, centred
        x = self.features(x).mean(dim=(2, 3))  # global average pool: any image size works
        return torch.relu(self.out(x))


class VideoCNN(nn.Module):
    """uint8 frames (B, K, H, W, 3) -> one ImageCNN shared by all K frames -> (B, K, width)
    -> over time: the mean (``pool``), or a GRU's last state (``gru``, which sees order,
    e.g. which way something moves) -> (B, width).

    Sharing the frame CNN keeps the parameters those of one image tower whatever K is.
    """

    def __init__(
        self, width: int, channels: tuple[int, ...] = (16, 32, 64), temporal: str = "pool"
    ):
        super().__init__()
        self.frame = ImageCNN(width, channels)
        self.temporal = temporal
        if temporal == "gru":
            self.rnn = nn.GRU(width, width, batch_first=True)
            self.out = nn.Linear(width, width)

    def forward(self, frames: Tensor) -> Tensor:
        b, k = frames.shape[:2]
        per_frame = self.frame(frames.reshape(b * k, *frames.shape[2:])).reshape(b, k, -1)
        if self.temporal == "pool":
            return per_frame.mean(dim=1)
        _, last = self.rnn(per_frame)  # last: (1, B, width)
        return torch.relu(self.out(last[0]))


class TextRNN(nn.Module):
    """token ids (B, L) -> embedding -> bidirectional GRU/LSTM -> masked mean -> (B, width)."""

    def __init__(
        self, vocab_size: int, width: int, embed_dim: int = 64, hidden: int = 64, rnn: str = "gru"
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        cell = nn.GRU if rnn == "gru" else nn.LSTM
        self.rnn = cell(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, width)

    def forward(self, ids: Tensor) -> Tensor:
        states, _ = self.rnn(self.embed(ids))  # (B, L, 2*hidden)
        # Average over real tokens only; padding would dilute short texts.
        valid = (ids != 0).unsqueeze(-1).float()
        pooled = (states * valid).sum(1) / valid.sum(1).clamp(min=1.0)
        return torch.relu(self.out(pooled))


class LogMel(nn.Module):
    """waveform (B, S) -> log-mel spectrogram (B, n_mels, frames); no learned parameters.

    The mel matrix is the feature encoders' (librosa's filters), so the frequencies match.
    """

    def __init__(self, sample_rate: int, n_mels: int = 40, hop_seconds: float = 0.02):
        super().__init__()
        from mmcli.encoders.audio import mel_filters

        self.n_fft = 1 << int(np.ceil(np.log2(0.032 * sample_rate)))  # ~32 ms windows
        # 20 ms hops: half the frames of the feature encoders, enough for a CNN on a CPU
        self.hop = max(1, round(hop_seconds * sample_rate))
        mel = mel_filters(sample_rate, self.n_fft, n_mels)
        self.register_buffer("mel", torch.from_numpy(mel.copy()), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    @torch.no_grad()
    def forward(self, audio: Tensor) -> Tensor:
        spec = torch.stft(audio, self.n_fft, self.hop, window=self.window, return_complex=True)
        power = spec.abs() ** 2  # (B, n_fft/2+1, frames)
        return torch.log(self.mel @ power + 1e-6)


class AudioCNN(nn.Module):
    """log-mel (B, n_mels, frames) -> three 2-D conv blocks -> global average -> (B, width)."""

    def __init__(self, width: int, channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.norm = nn.BatchNorm2d(1)  # log-mel levels vary by recording: learn the scale
        self.features = _conv_stack(1, channels)
        self.out = nn.Linear(channels[-1], width)

    def forward(self, logmel: Tensor) -> Tensor:
        x = self.features(self.norm(logmel.unsqueeze(1))).mean(dim=(2, 3))
        return torch.relu(self.out(x))


class Dense(nn.Module):
    """A number, or a block of fused features: (B, d) -> Linear -> ReLU -> (B, width)."""

    def __init__(self, in_dim: int, width: int):
        super().__init__()
        self.out = nn.Linear(in_dim, width)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 1:
            x = x.unsqueeze(1)
        return torch.relu(self.out(x.float()))


class CategoryEmbedding(nn.Module):
    """category index (B,) -> embedding (B, width); index 0 is the unknown bucket."""

    def __init__(self, n_categories: int, width: int):
        super().__init__()
        self.embed = nn.Embedding(n_categories, width)

    def forward(self, index: Tensor) -> Tensor:
        return self.embed(index)


def build_tower(spec: dict[str, Any], width: int) -> nn.Module:
    """The tower an architecture entry names (see stages/train.py for how entries are made)."""
    kind = spec["tower"]
    if kind == "image-cnn":
        return ImageCNN(width, tuple(spec["channels"]))
    if kind == "text-rnn":
        return TextRNN(len(spec["vocab"]), width, spec["embed_dim"], spec["hidden"], spec["rnn"])
    if kind == "audio-cnn":
        return AudioCNN(width, tuple(spec["channels"]))
    if kind == "video-cnn":
        return VideoCNN(width, tuple(spec["channels"]), spec["temporal"])
    if kind == "category":
        return CategoryEmbedding(len(spec["categories"]) + 1, width)
    return Dense(spec["dim"], width)
