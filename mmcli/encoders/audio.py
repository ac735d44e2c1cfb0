"""Audio encoders that need no trained weights: MFCC and log-mel statistics.

The signal processing is librosa's, written out in numpy (librosa's defaults: periodic
Hann window, zero-padded centred frames, Slaney mel filters, orthonormal DCT-II, 9-frame
Savitzky-Golay deltas); ``tests/encoders/test_audio_dsp.py`` checks it against librosa.
Importing librosa's spectral functions loads scipy.signal, 2.4 s of start-up in every
process that encodes audio; these few numpy lines load nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from mmcli.encoders.base import Encoder


def _frames(sample_rate: int) -> tuple[int, int]:
    # 32 ms windows, 10 ms hops, whatever the rate (512 / 160 samples at 16 kHz).
    n_fft = 1 << int(np.ceil(np.log2(0.032 * sample_rate)))
    return n_fft, max(1, int(round(0.010 * sample_rate)))


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    # Slaney's scale: linear below 1 kHz, logarithmic above.
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    linear = mel * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log, linear)


@lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft/2+1) float32 triangular filters, Slaney-normalised (librosa's mel)."""
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]  # equal area per filter
    return weights.astype(np.float32)


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)  # periodic


@lru_cache(maxsize=8)
def _dct(n_out: int, n_in: int) -> np.ndarray:
    # Orthonormal DCT-II as a matrix: the first n_out rows.
    k, n = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
    basis = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    basis[0] /= np.sqrt(2.0)
    return basis


def _power(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Power spectrogram (n_fft/2+1, frames) of centred, zero-padded frames."""
    padded = np.pad(y, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    spectrum = np.fft.rfft(frames * _hann(n_fft), axis=-1).astype(np.complex64)
    return np.ascontiguousarray((np.abs(spectrum) ** 2).T)


def _log_mel(y: np.ndarray, sample_rate: int, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """(power spectrogram, log-mel in dB) of one clip, both (bins, frames)."""
    n_fft, hop = _frames(sample_rate)
    power = _power(y, n_fft, hop)
    # einsum, not @: a product this small is slower through multi-threaded BLAS (thread
    # start-up each call), and numpy's own loop gives the same bits whatever the threads.
    mel = np.einsum("mf,ft->mt", mel_filters(sample_rate, n_fft, n_mels), power)
    # amin keeps silence finite: -100 dB rather than -inf.
    return power, 10.0 * np.log10(np.maximum(mel, np.float32(1e-10)))


def _delta(x: np.ndarray, width: int = 9) -> np.ndarray:
    """Slope of a least-squares line over ``width`` frames, edges repeated."""
    half, frames = width // 2, x.shape[-1]
    padded = np.pad(x, ((0, 0), (half, half)), mode="edge")
    slope = sum(k * padded[:, half + k : half + k + frames] for k in range(-half, half + 1))
    return slope / (2 * sum(k * k for k in range(1, half + 1)))


def _zero_crossing_rate(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(1, frames): share of sign changes in each frame (edges repeated, |y| <= 1e-10 is 0)."""
    padded = np.pad(y, n_fft // 2, mode="edge")
    signs = np.signbit(np.where(np.abs(padded) <= 1e-10, 0.0, padded))
    changes = np.concatenate([[0], np.cumsum(signs[1:] != signs[:-1])])
    starts = np.arange(0, len(padded) - n_fft + 1, hop)
    return ((changes[starts + n_fft - 1] - changes[starts]) / n_fft)[None, :]


def _spectral_shape(magnitude: np.ndarray, sample_rate: int, n_fft: int) -> list[np.ndarray]:
    """Centroid, bandwidth and 85% roll-off (Hz), and RMS, each (1, frames)."""
    hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)[:, None]
    total = magnitude.sum(axis=0, keepdims=True)
    share = magnitude / np.where(total < np.finfo(magnitude.dtype).tiny, 1.0, total)
    centroid = np.sum(hz * share, axis=0, keepdims=True)
    bandwidth = np.sum(share * (hz - centroid) ** 2, axis=0, keepdims=True) ** 0.5
    cumulative = np.cumsum(magnitude, axis=0)
    below = cumulative < 0.85 * cumulative[-1:]
    rolloff = np.nanmin(np.where(below, np.nan, 1.0) * hz, axis=0, keepdims=True)
    power = magnitude**2
    power[0] *= 0.5  # DC and Nyquist bins count once
    power[-1] *= 0.5
    rms = np.sqrt(2 * power.sum(axis=0, keepdims=True) / n_fft**2)
    return [centroid, bandwidth, rolloff, rms]


def _per_clip(
    encode: Callable[[np.ndarray], np.ndarray], values: np.ndarray, dim: int
) -> np.ndarray:
    # One clip at a time: a clip's features then never depend on which clips share its
    # batch (batched BLAS calls round differently), so shards and predict match exactly.
    y = np.asarray(values, dtype=np.float32)
    out = np.zeros((len(y), dim), np.float32)
    for i, clip in enumerate(y):
        # A silent clip can still give 0/0 in the spectral ratios; 0 is the honest value.
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
        sr = self.sample_rate
        n_fft, hop = _frames(sr)
        power, db = _log_mel(y, sr, self.N_MELS)
        mfcc = np.einsum("kb,bt->kt", _dct(self.n_mfcc, self.N_MELS), db)
        delta = _delta(mfcc)
        nyquist = sr / 2
        centroid, bandwidth, rolloff, rms = _spectral_shape(np.sqrt(power), sr, n_fft)
        shape = [  # each (1, frames); frequencies as a share of Nyquist
            centroid / nyquist,
            bandwidth / nyquist,
            rolloff / nyquist,
            _zero_crossing_rate(y, n_fft, hop),
            rms,
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
