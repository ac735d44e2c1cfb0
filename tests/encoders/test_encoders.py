"""Every encoder: shapes, dtype, determinism, and a stored state that restores exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmcli import encoders
from mmcli.errors import DataError

SR = 16000
RNG = np.random.default_rng(0)


def _images(n: int, h: int = 32, w: int = 32) -> np.ndarray:
    return RNG.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _audio(n: int, seconds: float = 0.5) -> np.ndarray:
    """n - 1 noisy tones and, last, one silent clip."""
    t = np.arange(int(seconds * SR)) / SR
    clips = np.stack([0.3 * np.sin(2 * np.pi * (200 + 300 * i) * t) for i in range(n)])
    clips += RNG.normal(0, 0.01, clips.shape)
    clips[-1] = 0.0
    return clips.astype(np.float32)


TEXTS = ["the cat sat on the mat", "a dog ran home", "the dog and the cat", "birds sing"]

# modality, name, options, train values, test values
CASES: list[tuple[str, str, dict[str, Any], Any, Any]] = [
    ("image", "stats", {}, _images(3), _images(4, 30, 45)),
    ("image", "pixels", {}, _images(3), _images(4, 30, 45)),
    ("audio", "mfcc", {"sample_rate": SR}, _audio(3), _audio(4)),
    ("audio", "logmel", {"sample_rate": SR}, _audio(3), _audio(4)),
    ("text", "tfidf", {}, TEXTS, ["the cat ran", "zebra", ""]),
    ("text", "hashing", {}, TEXTS, ["the cat ran", "zebra", ""]),
    ("number", "standard", {}, np.array([1.0, 2.0, 4.0]), np.array([0.0, 2.0, 1e6])),
    ("category", "onehot", {}, ["b", "a", "b"], ["a", "b", "c"]),
]
IDS = [f"{m}-{n}" for m, n, *_ in CASES]


def _fitted(modality: str, name: str, options: dict[str, Any], train: Any) -> Any:
    encoder = encoders.create(modality, name, **options)
    encoder.fit(train)
    return encoder


def _restored(encoder: Any, tmp_path: Path) -> Any:
    """The encoder rebuilt the way extract-features stores it: JSON + safetensors."""
    from safetensors.numpy import load_file, save_file

    meta, arrays = encoder.state()
    meta = json.loads(json.dumps(meta, sort_keys=True))
    if arrays:
        save_file(
            {k: np.ascontiguousarray(v) for k, v in arrays.items()},
            str(tmp_path / "state.safetensors"),
        )
        arrays = load_file(str(tmp_path / "state.safetensors"))
    return type(encoder).from_state(meta, arrays)


@pytest.mark.parametrize(("modality", "name", "options", "train", "test"), CASES, ids=IDS)
def test_shape_dtype_determinism_and_state(modality, name, options, train, test, tmp_path):
    encoder = _fitted(modality, name, options, train)
    out = encoder.transform(test)
    assert out.shape == (len(test), encoder.dim)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert encoder.transform(test).tobytes() == out.tobytes()
    again = _fitted(modality, name, options, train).transform(test)
    assert again.tobytes() == out.tobytes()
    restored = _restored(encoder, tmp_path)
    assert restored.dim == encoder.dim
    assert restored.transform(test).tobytes() == out.tobytes()
    # A chunk boundary must not change a row's features: one row alone gives the same.
    assert encoder.transform(test[:1]).tobytes() == out[:1].tobytes()


def test_unfitted_encoders_know_their_width_at_construction():
    widths = {
        ("image", "stats"): 207,
        ("image", "pixels"): 256,
        ("audio", "mfcc"): 90,
        ("audio", "logmel"): 128,
        ("text", "hashing"): 1024,
    }
    for (modality, name), width in widths.items():
        encoder = encoders.create(modality, name)
        assert not encoder.fitted
        assert encoder.dim == width


def test_image_stats_tells_horizontal_from_vertical_stripes():
    stripes = np.where(np.arange(64) % 4 < 2, 0, 255).astype(np.uint8)
    horizontal = np.repeat(np.repeat(stripes[:, None, None], 64, 1), 3, 2)
    vertical = horizontal.transpose(1, 0, 2)
    out = encoders.create("image", "stats").transform(np.stack([horizontal, vertical]))
    colour, texture = out[:, :54], out[:, 54:]
    np.testing.assert_array_equal(colour[0], colour[1])  # same pixels, other layout
    overall = texture[:, -9:]
    # Unsigned orientation in 9 bins of 20 degrees: a vertical gradient (horizontal
    # stripes) lands in bin 4, a horizontal one in bin 0.
    assert overall[0].argmax() == 4
    assert overall[1].argmax() == 0
    assert np.abs(texture[0] - texture[1]).max() > 0.5


def test_image_pixels_keeps_layout_and_scale():
    image = np.zeros((1, 40, 24, 3), np.uint8)
    image[:, :, 12:] = 255  # right half white
    out = encoders.create("image", "pixels").transform(image).reshape(16, 16)
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(out[:, 0], 0.0)
    np.testing.assert_array_equal(out[:, -1], 1.0)


@pytest.mark.parametrize("name", ["mfcc", "logmel"])
def test_silent_audio_gives_finite_features(name):
    for rate in (16000, 8000):
        encoder = encoders.create("audio", name, sample_rate=rate)
        out = encoder.transform(np.zeros((2, rate // 2), np.float32))
        assert out.shape == (2, encoder.dim)
        assert np.isfinite(out).all()


def test_tfidf_vocabulary_comes_from_train_only():
    encoder = _fitted("text", "tfidf", {}, TEXTS)
    meta, arrays = encoder.state()
    vocabulary = meta["vocabulary"]
    assert all(isinstance(i, int) for i in vocabulary.values())
    assert sorted(vocabulary.values()) == list(range(encoder.dim))
    assert arrays["idf"].shape == (encoder.dim,)
    assert "zebra" not in vocabulary
    out = encoder.transform(["zebra giraffe", "the cat"])
    np.testing.assert_array_equal(out[0], 0.0)
    assert out[1].any()


def test_tfidf_max_features_bounds_the_width():
    assert _fitted("text", "tfidf", {"max_features": 5}, TEXTS).dim == 5


def test_tfidf_with_no_words_in_train_is_a_data_error():
    with pytest.raises(DataError, match="empty vocabulary"):
        _fitted("text", "tfidf", {}, ["", "!!", "a"])


def test_hashing_rows_are_unit_length():
    out = encoders.create("text", "hashing", n_features=64).transform(["the cat sat", ""])
    assert out.shape == (2, 64)
    assert np.linalg.norm(out[0]) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(out[1], 0.0)


def test_onehot_keeps_most_frequent_and_buckets_the_rest():
    encoder = _fitted("category", "onehot", {"max_categories": 2}, list("ccbbbadd"))
    # b (3) first; c and d tie at 2 and c wins alphabetically; a is left out.
    assert encoder.categories == ["b", "c"]
    out = encoder.transform(["c", "b", "a", "d", "zzz"])
    np.testing.assert_array_equal(out, [[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]])


def test_standard_scales_with_train_statistics_and_survives_a_constant_column():
    encoder = _fitted("number", "standard", {}, np.array([1.0, 3.0]))
    np.testing.assert_allclose(encoder.transform(np.array([2.0, 4.0])), [[0.0], [2.0]])
    constant = _fitted("number", "standard", {}, np.full(4, 7.0))
    np.testing.assert_array_equal(constant.transform(np.array([7.0, 8.0])), [[0.0], [1.0]])
