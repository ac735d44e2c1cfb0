"""Audio encoders that need no trained weights: MFCC and log-mel statistics (librosa)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from mmcli.encoders.base import Encoder


def _frames(sample_rate: int) -> tuple[int, int]:
    # 32 ms windows, 10 ms hops, whatever the rate (512 / 160 samples at 16 kHz).
    n_fft = 1 << int(np.ceil(np.log2(0.032 * sample_rate)))
    return n_fft, max(1, int(round(0.010 * sample_rate)))


@lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    # Building the filter bank costs more than applying it to one clip: build it once.
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)


def _log_mel(y: np.ndarray, sample_rate: int, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """(power spectrogram, log-mel in dB) of one clip, both (bins, frames)."""
    import librosa

    n_fft, hop = _frames(sample_rate)
    power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, center=True)) ** 2
    # einsum, not @: a product this small is slower through multi-threaded BLAS (thread
    # start-up each call), and numpy's own loop gives the same bits whatever the threads.
    mel = np.einsum("mf,ft->mt", _mel_basis(sample_rate, n_fft, n_mels), power)
    # amin keeps silence finite: -100 dB rather than -inf.
    return power, librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)


def _per_clip(
    encode: Callable[[np.ndarray], np.ndarray], values: np.ndarray, dim: int
) -> np.ndarray:
    # One clip at a time: a clip's features then never depend on which clips share its
    # batch (batched BLAS calls round differently), so shards and predict match exactly.
    y = np.asarray(values, dtype=np.float32)
    out = np.zeros((len(y), dim), np.float32)
    for i, clip in enumerate(y):
        # Silent clips can still give 0/0 in librosa's ratios; 0 is the honest value there.
        out[i] = np.nan_to_num(encode(np.ascontiguousarray(clip)), nan=0.0, posinf=0.0, neginf=0.0)
    return out


def _mean_std(x: np.ndarray) -> np.ndarray:
    # x: (features, frames) -> (2 * features,)
    return np.concatenate([x.mean(axis=-1), x.std(axis=-1)])


class AudioMFCC(Encoder):
    """MFCCs and their deltas (mean and std over time) plus spectral shape statistics."""

    name = "mfcc"
    modality = "audio"
    description = "20 MFCCs + deltas (mean/std), spectral centroid/bandwidth/rolloff, ZCR, RMS"
    #: Mel bands under the MFCCs: librosa's default 128 leaves empty filters at n_fft=512.
    N_MELS = 40

    def __init__(self, sample_rate: int = 16000, n_mfcc: int = 20, **options: object):
        super().__init__(sample_rate=sample_rate, n_mfcc=n_mfcc, **options)
        self.sample_rate, self.n_mfcc = sample_rate, n_mfcc

    @property
    def dim(self) -> int:
        return 4 * self.n_mfcc + 10

    def transform(self, values: np.ndarray) -> np.ndarray:
        return _per_clip(self._encode, values, self.dim)

    def _encode(self, y: np.ndarray) -> np.ndarray:
        import librosa

        sr = self.sample_rate
        n_fft, hop = _frames(sr)
        power, db = _log_mel(y, sr, self.N_MELS)
        mfcc = librosa.feature.mfcc(S=db, n_mfcc=self.n_mfcc)
        # mode="nearest" works for clips shorter than the 9-frame delta window.
        delta = librosa.feature.delta(mfcc, mode="nearest")
        magnitude = np.sqrt(power)
        nyquist = sr / 2
        shape = [  # each (1, frames); frequencies as a share of Nyquist
            librosa.feature.spectral_centroid(S=magnitude, sr=sr, n_fft=n_fft) / nyquist,
            librosa.feature.spectral_bandwidth(S=magnitude, sr=sr, n_fft=n_fft) / nyquist,
            librosa.feature.spectral_rolloff(S=magnitude, sr=sr, n_fft=n_fft) / nyquist,
            librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop),
            librosa.feature.rms(S=magnitude, frame_length=n_fft),
        ]
        frames = min(s.shape[-1] for s in [*shape, mfcc])
        # MFCCs are in dB-like units (tens to hundreds) and deltas about a tenth of that;
        # the divisions bring every block near unit scale, so no block dominates a
        # distance before fuse normalises them.
        stats = [_mean_std(mfcc[:, :frames]) / 100.0, _mean_std(delta[:, :frames]) / 10.0]
        stats += [_mean_std(s[:, :frames]) for s in shape]
        return np.concatenate(stats)


class AudioLogMel(Encoder):
    """Log-mel band energies, mean and std over time."""

    name = "logmel"
    modality = "audio"
    description = "64 log-mel bands (mean/std)"

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, **options: object):
        super().__init__(sample_rate=sample_rate, n_mels=n_mels, **options)
        self.sample_rate, self.n_mels = sample_rate, n_mels

    @property
    def dim(self) -> int:
        return 2 * self.n_mels

    def transform(self, values: np.ndarray) -> np.ndarray:
        return _per_clip(self._encode, values, self.dim)

    def _encode(self, y: np.ndarray) -> np.ndarray:
        # /100 brings dB (about -100..+40) near unit scale.
        return _mean_std(_log_mel(y, self.sample_rate, self.n_mels)[1] / 100.0)
