"""Decoding images and audio: good files come out right, bad ones give a per-row reason."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mmcli.io.audio import AudioRejected, load_audio
from mmcli.io.images import ImageRejected, load_image
from mmcli.io.paths import PathRejected, resolve_in_root


def _wav(path, seconds=1.0, rate=8000, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.stack([tone] * channels, axis=1), rate, subtype="PCM_16")
    return path


def test_audio_is_resampled_mixed_and_padded(tmp_path):
    y = load_audio(_wav(tmp_path / "a.wav", seconds=0.5, channels=2), 16000, 1.0)
    assert y.shape == (16000,) and y.dtype == np.float32
    assert np.abs(y[:7000]).max() > 0.4 and np.abs(y[8100:]).max() == 0  # zero-padded tail
    trimmed = load_audio(_wav(tmp_path / "b.wav", seconds=3.0), 16000, 1.0)
    assert trimmed.shape == (16000,)


def test_truncated_wav_is_refused_not_shortened(tmp_path):
    data = _wav(tmp_path / "a.wav").read_bytes()
    (tmp_path / "t.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioRejected, match="truncated"):
        load_audio(tmp_path / "t.wav", 16000, 1.0)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "cannot read audio header"),
        (b"not audio at all" * 10, "cannot read audio header"),
    ],
)
def test_bad_audio_reasons(tmp_path, content, reason):
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(AudioRejected, match=reason):
        load_audio(tmp_path / "bad.wav", 16000, 1.0)


def test_header_only_and_nan_audio(tmp_path):
    (tmp_path / "h.wav").write_bytes(_wav(tmp_path / "a.wav").read_bytes()[:44])
    with pytest.raises(
        AudioRejected, match="truncated: header says 16000 bytes of audio, file has 0"
    ):
        load_audio(tmp_path / "h.wav", 16000, 1.0)
    sf.write(
        tmp_path / "n.wav", np.array([0.1, np.nan, 0.2] * 100, np.float32), 8000, subtype="FLOAT"
    )
    with pytest.raises(AudioRejected, match="NaN"):
        load_audio(tmp_path / "n.wav", 16000, 1.0)


def test_images_of_every_mode_become_rgb(tmp_path):
    Image.fromarray(np.full((10, 10), 60000, np.uint16)).save(tmp_path / "16.png")
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(tmp_path / "t.png")
    grey16 = load_image(tmp_path / "16.png", 8)
    assert grey16.shape == (8, 8, 3) and grey16.min() > 200  # scaled, not clipped to 255 noise
    cmyk = load_image(tmp_path / "c.jpg", 8)
    assert cmyk[..., 0].mean() > 200 and cmyk[..., 1].mean() < 60  # red
    transparent = load_image(tmp_path / "t.png", 8)
    assert transparent.min() == 255  # composited on white


def test_bad_images(tmp_path, monkeypatch):
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(ImageRejected, match="empty file"):
        load_image(tmp_path / "zero.png", 8)
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageRejected, match="cannot decode"):
        load_image(tmp_path / "cut.jpg", 8)
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageRejected, match="cannot decode"):
        load_image(tmp_path / "text.png", 8)
    Image.new("RGB", (8, 8)).save(tmp_path / "x.ico")
    with pytest.raises(ImageRejected, match="not allowed"):
        load_image(tmp_path / "x.ico", 8)
    Image.new("RGB", (20, 20)).save(tmp_path / "big.png")
    with pytest.raises(ImageRejected, match="over the 0.0001 megapixel limit"):
        load_image(tmp_path / "big.png", 8, max_megapixels=0.0001)
    assert load_image(tmp_path / "big.png", 8, max_megapixels=0.0004).shape == (8, 8, 3)


def test_bytes_decode_like_the_path_and_reasons_do_not_name_memory(tmp_path):
    Image.new("RGB", (30, 20), (10, 200, 30)).save(tmp_path / "a.png")
    _wav(tmp_path / "a.wav", seconds=0.5, channels=2)
    for name, load in (("a.png", lambda s: load_image(s, 8)), ("a.wav", _load16k)):
        path = tmp_path / name
        assert np.array_equal(load(path), load(path.read_bytes()))
    data = _wav(tmp_path / "b.wav").read_bytes()
    with pytest.raises(AudioRejected, match="truncated"):
        load_audio(data[: len(data) // 2], 16000, 1.0)
    for bad in (b"", b"hello", (tmp_path / "a.png").read_bytes()[:40]):
        with pytest.raises(ImageRejected) as caught:
            load_image(bad, 8)
        assert "0x" not in str(caught.value) and "BytesIO" not in str(caught.value)


def _load16k(source):
    return load_audio(source, 16000, 1.0)


def test_wrong_extension_still_decodes_by_content(tmp_path):
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "really_png.jpg", format="PNG")
    assert load_image(tmp_path / "really_png.jpg", 8)[0, 0, 0] == 255


def test_paths_must_stay_in_the_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "ok.png").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"x")
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    (root / "sub").mkdir()
    (root / "sub" / "in.png").write_bytes(b"x")
    assert resolve_in_root("ok.png", root) == (root / "ok.png").resolve()
    assert resolve_in_root("sub//in.png", root) == (root / "sub" / "in.png").resolve()
    assert resolve_in_root("sub/../ok.png", root) == (root / "ok.png").resolve()
    assert resolve_in_root(str(root / "sub" / "in.png"), root) == (root / "sub/in.png").resolve()
    # "/ok.png" is the file at the top of the file system, not the root's ok.png
    outside = ("../secret.png", str(tmp_path / "secret.png"), "link.png", "/ok.png", "sub/../..")
    for cell in outside:
        with pytest.raises(PathRejected, match="outside the data folder"):
            resolve_in_root(cell, root)
    with pytest.raises(PathRejected, match="file not found"):
        resolve_in_root("missing.png", root)
    with pytest.raises(PathRejected, match="not a regular file"):
        resolve_in_root(".", root)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_exif_orientation_is_applied(tmp_path, fmt):
    # A 20x10 picture, left half red, stored with "rotate 90 clockwise to display".
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :10, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / f"o.{fmt.lower()}"
    Image.fromarray(pixels).save(path, format=fmt, exif=exif, quality=95)
    for source in (path, path.read_bytes()):
        upright = load_image(source, 20)  # displayed 10x20 (portrait), stretched to 20x20
        assert upright[:8, :, 0].mean() > 200 and upright[-8:, :, 0].mean() < 50  # red on top
