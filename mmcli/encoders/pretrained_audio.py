"""Resemblyzer's speaker encoder as a frozen audio encoder: 256 floats per clip.

The network (a 3-layer LSTM over 40 mel bands, a linear layer, ReLU, unit length) is
written out here in a few lines, and its weights are read from the ``pretrained.pt``
that the ``resemblyzer`` package ships (``torch.load(weights_only=True)``: tensors only,
no code). The package itself is never imported: its ``__init__`` pulls in webrtcvad,
which mmcli does not need. The steps follow ``VoiceEncoder.embed_utterance``: the clip,
at 16 kHz and raised to -30 dBFS if quieter, is cut into 1.6 s windows (160 mel frames)
that overlap; the embedding is the normalised mean of the windows' embeddings. The
network is exported to ONNX in memory and run with ONNX Runtime, whose LSTM is about
ten times faster than torch eager mode's on two cores.
Resemblyzer's silence trimming (webrtcvad) is left out: preprocess fixes clip lengths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmcli.encoders import pretrained

RATE = 16000
HOP = 160  # 10 ms
N_FFT = 400  # 25 ms
N_MELS = 40
WINDOW = 160  # frames per partial utterance (1.6 s)
PARTIALS_PER_SECOND = 1.3
MIN_COVERAGE = 0.75
TARGET_DBFS = -30.0
#: Windows per ONNX Runtime call.
BATCH = 64


def torch_model() -> Any:
    import torch
    from torch import nn

    class SpeakerEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
            self.linear = nn.Linear(256, 256)

        def forward(self, mels: torch.Tensor) -> torch.Tensor:
            # mels (windows, frames, 40) -> the last layer's final hidden state -> (windows, 256)
            _, (hidden, _) = self.lstm(mels)
            embeds = torch.relu(self.linear(hidden[-1]))
            return embeds / torch.linalg.vector_norm(embeds, dim=1, keepdim=True).clamp_min(1e-12)

    model = SpeakerEncoder()
    checkpoint = pretrained.load_torch_weights(
        pretrained.package_file("resemblyzer", "pretrained.pt")
    )
    # The checkpoint also holds a similarity scale/bias used only in training.
    state = {k: v for k, v in checkpoint["model_state"].items() if not k.startswith("similarity")}
    model.load_state_dict(state, strict=True)
    return model.eval()


def graph() -> bytes:
    """The ONNX graph, exported in memory once per process (under a second)."""
    import torch

    def export() -> bytes:
        example = torch.zeros(2, WINDOW, N_MELS)
        return pretrained.export_onnx(torch_model(), (example,), ["mels"], ["embeds"])

    return pretrained.cached("resemblyzer-graph", export)


def _session() -> Any:
    return pretrained.session(graph())


def windows(n_samples: int) -> list[slice]:
    """Resemblyzer's ``compute_partial_slices``: 160-frame windows, one every 1/1.3 s."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((RATE / PARTIALS_PER_SECOND) / HOP))
    starts = range(0, max(1, n_frames - WINDOW + step + 1), step)
    slices = [slice(i, i + WINDOW) for i in starts]
    coverage = (n_samples - slices[-1].start * HOP) / (WINDOW * HOP)
    if coverage < MIN_COVERAGE and len(slices) > 1:
        slices = slices[:-1]
    return slices


def mel_windows(clip: np.ndarray) -> np.ndarray:
    """One 16 kHz clip -> (windows, 160, 40) float32 mel power frames."""
    import librosa

    rms = float(np.sqrt(np.mean(clip.astype(np.float64) ** 2)))
    if 0 < rms and 20 * np.log10(rms) < TARGET_DBFS:  # raise quiet clips, never lower loud ones
        clip = clip * np.float32(10 ** ((TARGET_DBFS - 20 * np.log10(rms)) / 20))
    slices = windows(len(clip))
    clip = np.pad(clip, (0, max(0, slices[-1].stop * HOP - len(clip))))
    mel = librosa.feature.melspectrogram(
        y=clip, sr=RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS
    ).T.astype(np.float32)
    return np.stack([mel[s] for s in slices])


class Resemblyzer(pretrained.PretrainedEncoder):
    """Speaker embedding (Resemblyzer's pretrained LSTM): 256 floats, unit length.

    Audio arrives at the preprocess ``sample_rate`` and is resampled to 16 kHz here.
    """

    name = "resemblyzer"
    modality = "audio"
    PACKAGES = ("resemblyzer", "onnxruntime")
    description = "Resemblyzer speaker embedding (3-layer LSTM, 40 mel bands, 16 kHz)"

    def __init__(self, sample_rate: int = RATE, **options: Any):
        super().__init__(sample_rate=sample_rate, **options)
        self.sample_rate = sample_rate

    @property
    def dim(self) -> int:
        return 256

    def transform(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros((len(values), self.dim), np.float32)
        pending: list[tuple[int, np.ndarray]] = []  # (row, its mel windows), not yet encoded
        for i, clip in enumerate(np.asarray(values, dtype=np.float32)):
            if self.sample_rate != RATE:
                import soxr

                clip = soxr.resample(clip, self.sample_rate, RATE).astype(np.float32)
            if np.any(clip):  # silence has no speaker: it keeps zeros, not 0/0
                pending.append((i, mel_windows(clip)))
            # Encode once about BATCH windows wait, so memory stays bounded for long clips.
            if sum(len(m) for _, m in pending) >= BATCH or (i == len(values) - 1 and pending):
                self._encode(pending, out)
                pending = []
        return out

    def _encode(self, clips: list[tuple[int, np.ndarray]], out: np.ndarray) -> None:
        run = pretrained.cached("resemblyzer", _session)
        # ONNX Runtime's LSTM gives each window the same bits whatever its batch mates
        # (tests check this), so windows of several clips share one call.
        mels = np.concatenate([m for _, m in clips])
        embeds = np.concatenate(
            [run.run(None, {"mels": mels[p]})[0] for p in pretrained.batches(len(mels), BATCH)]
        )
        start = 0
        for i, m in clips:
            out[i] = pretrained.unit(embeds[start : start + len(m)].mean(axis=0))
            start += len(m)
