"""The numpy signal processing under the audio encoders matches librosa's."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from mmcli.encoders import audio
from mmcli.encoders.audio import AudioLogMel, AudioMFCC

RATE = 16000


def _clips() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    chirp = np.sin(2 * np.pi * (200 + 3000 * t) * t) * np.linspace(0, 1, RATE)
    return {
        "noise": (0.3 * rng.standard_normal(RATE)).astype(np.float32),
        "chirp": chirp.astype(np.float32),
        "silence": np.zeros(RATE, np.float32),
        "half silent": np.concatenate([np.zeros(RATE // 2), chirp[: RATE // 2]]).astype(np.float32),
        "shorter than a window": (0.1 * rng.standard_normal(300)).astype(np.float32),
    }


def _librosa_mfcc_features(y: np.ndarray, n_mfcc: int = 20) -> np.ndarray:
    """The encoder as it was written with librosa's own functions."""
    n_fft, hop = audio._frames(RATE)
    power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, center=True)) ** 2
    mel = librosa.filters.mel(sr=RATE, n_fft=n_fft, n_mels=AudioMFCC.N_MELS) @ power
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    mfcc = librosa.feature.mfcc(S=db, n_mfcc=n_mfcc)
    delta = librosa.feature.delta(mfcc, mode="nearest")
    mag = np.sqrt(power)
    shape = [
        librosa.feature.spectral_centroid(S=mag, sr=RATE, n_fft=n_fft) / (RATE / 2),
        librosa.feature.spectral_bandwidth(S=mag, sr=RATE, n_fft=n_fft) / (RATE / 2),
        librosa.feature.spectral_rolloff(S=mag, sr=RATE, n_fft=n_fft) / (RATE / 2),
        librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop),
        librosa.feature.rms(S=mag, frame_length=n_fft),
    ]
    frames = min(s.shape[-1] for s in [*shape, mfcc])

    def mean_std(x):
        return np.concatenate([x.mean(axis=-1), x.std(axis=-1)])

    stats = [mean_std(mfcc[:, :frames]) / 100.0, mean_std(delta[:, :frames]) / 10.0]
    stats += [mean_std(s[:, :frames]) for s in shape]
    return np.nan_to_num(np.concatenate(stats), nan=0.0, posinf=0.0, neginf=0.0)


@pytest.mark.parametrize(("rate", "n_mels"), [(16000, 40), (8000, 64), (22050, 128)])
def test_mel_filters_are_librosas(rate, n_mels):
    n_fft, _ = audio._frames(rate)
    ours = audio.mel_filters(rate, n_fft, n_mels)
    theirs = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", list(_clips()))
def test_spectrogram_and_features_match_librosa(name):
    y = _clips()[name]
    n_fft, hop = audio._frames(RATE)
    theirs = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, center=True)) ** 2
    np.testing.assert_allclose(audio._power(y, n_fft, hop), theirs, rtol=1e-4, atol=1e-6)
    ours = AudioMFCC(sample_rate=RATE).transform(y[None, :])[0]
    np.testing.assert_allclose(ours, _librosa_mfcc_features(y), rtol=2e-4, atol=2e-5)


def test_logmel_features_match_librosa():
    y = _clips()["chirp"]
    n_fft, hop = audio._frames(RATE)
    mel = librosa.feature.melspectrogram(
        y=y, sr=RATE, n_fft=n_fft, hop_length=hop, n_mels=64, power=2.0
    )
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None) / 100.0
    expected = np.concatenate([db.mean(axis=-1), db.std(axis=-1)])
    ours = AudioLogMel(sample_rate=RATE).transform(y[None, :])[0]
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
