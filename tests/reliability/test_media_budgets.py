"""Decoding budgets (issue 16, families 1 and 2): a few-MB audio or video file whose header
declares gigabytes of samples or gigapixels of frames is that row's rejection, named with
its figures and the flag that raises the limit, before the decoder allocates or works;
a file just under a budget is kept. Predict applies the budgets stored with the model."""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import run_ok
from PIL import Image
from videogen import clip_frames, write_clip

from mmcli.artifacts.records import TableSchema
from mmcli.config import PreprocessConfig
from mmcli.io.audio import MAX_RATE

BUDGETS = ("audio_max_decoded_mb", "video_max_decoded_megapixels")


# -- files ------------------------------------------------------------------------------
def _flac(path: Path, rate: int, channels: int, seconds: float, declare: int = 0) -> Path:
    """Noise written as FLAC; ``declare``: the frame count its STREAMINFO then claims."""
    rng = np.random.default_rng(0)
    noise = 0.3 * rng.standard_normal((int(rate * seconds), channels))
    sf.write(path, noise.astype(np.float32), rate, format="FLAC")
    if declare:
        data = bytearray(path.read_bytes())
        # STREAMINFO after "fLaC" and its block header: 10 bytes, then 64 bits holding
        # rate (20), channels - 1 (3), bits - 1 (5) and the total frame count (36).
        word = int.from_bytes(data[18:26], "big")
        word = (word & ~((1 << 36) - 1)) | declare
        data[18:26] = word.to_bytes(8, "big")
        path.write_bytes(bytes(data))
    return path


def _wav(path: Path, rate: int, frames: int = 1000) -> Path:
    """A mono 16-bit WAV of silence whose header states ``rate`` (any 32-bit value)."""
    data = frames * 2
    fmt = struct.pack("<HHIIHH", 1, 1, rate, (rate * 2) & 0xFFFFFFFF, 2, 16)
    head = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
    path.write_bytes(head + fmt + b"data" + struct.pack("<I", data) + b"\0" * data)
    return path


def _clip(path: Path, n: int, size: int = 32) -> Path:
    return write_clip(path, clip_frames(0, n, size, np.random.default_rng(n)), fps=8)


def _skip_bomb(path: Path, size: int, n: int, fps: int = 100) -> Path:
    """One black keyframe of size x size, then n - 1 copies of an all-skip P frame: a
    file of a few hundred KB that decodes to n full frames."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "keyint": "100000"}
        packets = []
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(np.zeros((size, size, 3), np.uint8), "rgb24")
            frame.pts = i
            packets += list(stream.encode(frame))
        packets += list(stream.encode())
        key, skip = packets[0], bytes(packets[1])
        base, step = key.time_base, int(round(1 / (fps * key.time_base)))
        key.pts = key.dts = 0
        out.mux(key)
        for i in range(1, n):
            packet = av.Packet(skip)
            packet.stream, packet.time_base = stream, base
            packet.pts = packet.dts = i * step
            out.mux(packet)
    return path


def _growing(path: Path, small: int, big: int, n_small: int, n_big: int) -> Path:
    """MJPEG in AVI whose header says small x small, and whose last frames are big x big:
    the header underestimates the decoding work."""
    import av

    def jpeg(size: int) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (size, size), (90, 30, 200)).save(buf, "JPEG")
        return buf.getvalue()

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=8)
        stream.width = stream.height = small
        stream.pix_fmt = "yuvj420p"
        for i, data in enumerate([jpeg(small)] * n_small + [jpeg(big)] * n_big):
            packet = av.Packet(data)
            packet.stream, packet.time_base = stream, Fraction(1, 8)
            packet.pts = packet.dts = i
            packet.is_keyframe = True
            out.mux(packet)
    return path


# -- running preprocess -----------------------------------------------------------------
def _manifest(root: Path, kind: str, subject: str) -> Path:
    """Four ordinary rows and the subject file last (row 4), one media column ``m``."""
    names = []
    for i in range(4):
        name = f"ok{i}.{'flac' if kind == 'audio' else 'mp4'}"
        if kind == "audio":
            _flac(root / name, 8000, 1, 0.5)
        else:
            _clip(root / name, 8)
        names.append(name)
    manifest = root / "manifest.csv"
    labels = ["a", "b", "a", "b", "a"]
    pd.DataFrame({"m": [*names, subject], "label": labels}).to_csv(manifest, index=False)
    return manifest


def _preprocess(manifest: Path, out: Path, kind: str, *flags: object) -> dict[int, str]:
    """Run preprocess (exit 0 expected); returns {rejected row: reason}."""
    extra = ["--sample-rate", "8000", "--audio-seconds", "1"]
    if kind == "video":
        extra += ["--video-frames", "4", "--image-size", "16"]
    run_ok("preprocess", manifest, "--out", out, "--input", f"m:{kind}", *extra, *flags)
    rejected = pd.read_parquet(out / "rejected.parquet")
    return dict(zip(rejected["row"], rejected["reason"], strict=True))


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


# -- audio ------------------------------------------------------------------------------
def test_audio_just_under_the_decoded_size_budget_is_kept_just_over_refused(root, tmp_path):
    _flac(root / "s.flac", 16000, 2, 1.0)  # 16000 frames x 2 channels x 4 bytes = 0.128 MB
    manifest = _manifest(root, "audio", "s.flac")
    out = tmp_path / "prep"
    assert _preprocess(manifest, out, "audio", "--audio-max-decoded-mb", "0.128") == {}
    # Same output folder: the row kept above must not be reused under a smaller budget.
    over = _preprocess(manifest, out, "audio", "--audio-max-decoded-mb", "0.127")
    assert list(over) == [4]
    assert "decodes to 0.128 MB (16000 frames x 2 channels x 4 bytes" in over[4]
    assert "over the 0.127 MB budget (raise --audio-max-decoded-mb)" in over[4]


def test_default_budget_refuses_a_flac_declaring_gigabytes(root, tmp_path):
    # 600 s of 8 channels at 655,350 Hz stated in a 30 KB file: 12.6 GB as float32.
    frames = 600 * 655350
    _flac(root / "bomb.flac", 655350, 8, 0.05, declare=frames)
    # Just under the default 2000 MB: the budget lets it through, and reading it finds
    # the file far shorter than its header says (libsndfile's words for it).
    _flac(root / "under.flac", 655350, 8, 0.05, declare=2000 * 10**6 // 32)
    manifest = _manifest(root, "audio", "bomb.flac")
    df = pd.read_csv(manifest)
    df.loc[5] = ["under.flac", "b"]
    df.to_csv(manifest, index=False)
    reasons = _preprocess(manifest, tmp_path / "prep", "audio")
    assert sorted(reasons) == [4, 5]
    assert f"decodes to 12582.7 MB ({frames} frames x 8 channels" in reasons[4]
    assert "over the 2000 MB budget (raise --audio-max-decoded-mb)" in reasons[4]
    assert reasons[5].startswith("cannot decode audio past frame 0 of 62500000: ")


def test_a_flac_truncated_past_the_stored_clip_is_still_refused(root, tmp_path):
    # 4 s of audio, a header claiming 100 s; the stored second is read whole, the rest
    # is read in blocks only to find it missing.
    _flac(root / "short.flac", 8000, 1, 4.0, declare=800_000)
    reasons = _preprocess(_manifest(root, "audio", "short.flac"), tmp_path / "prep", "audio")
    assert list(reasons) == [4]
    assert reasons[4].startswith("cannot decode audio past frame 16000 of 800000: ")


def test_extreme_declared_sample_rates(root, tmp_path):
    _wav(root / "fast.wav", 2_000_000_000)
    _wav(root / "top.wav", MAX_RATE, frames=MAX_RATE // 4)  # just under: kept
    manifest = _manifest(root, "audio", "fast.wav")
    df = pd.read_csv(manifest)
    df.loc[5] = ["top.wav", "b"]
    df.to_csv(manifest, index=False)
    reasons = _preprocess(manifest, tmp_path / "prep", "audio")
    assert reasons == {4: f"sample rate 2000000000 Hz (at most {MAX_RATE})"}


def test_audio_just_under_the_duration_budget_is_kept_just_over_refused(root, tmp_path):
    _flac(root / "s.flac", 8000, 1, 3.0)
    manifest = _manifest(root, "audio", "s.flac")
    out = tmp_path / "prep"
    assert _preprocess(manifest, out, "audio", "--audio-max-seconds", "3") == {}
    over = _preprocess(manifest, out, "audio", "--audio-max-seconds", "2.9")
    assert over == {4: "3 s long (at most 2.9 s; raise --audio-max-seconds)"}


def test_images_just_under_the_pixel_budget_are_kept_just_over_refused(root, tmp_path):
    for i, side in enumerate((10, 10, 10, 10, 100)):  # the last: 0.01 megapixels
        Image.new("RGB", (side, side), (i * 40, 80, 20)).save(root / f"i{i}.png")
    manifest = root / "images.csv"
    pd.DataFrame({"m": [f"i{i}.png" for i in range(5)], "label": list("ababa")}).to_csv(
        manifest, index=False
    )
    out = tmp_path / "prep"
    assert _preprocess(manifest, out, "image", "--image-max-megapixels", "0.01") == {}
    over = _preprocess(manifest, out, "image", "--image-max-megapixels", "0.0099")
    assert over == {
        4: "image is 100x100 pixels, over the 0.0099 megapixel limit (raise --image-max-megapixels)"
    }


# -- video ------------------------------------------------------------------------------
def test_video_just_under_the_header_pixel_budget_is_kept_just_over_refused(root, tmp_path):
    _clip(root / "s.mp4", 20)  # 4 frames sampled from 20: decoded up to frame 17
    manifest = _manifest(root, "video", "s.mp4")
    out = tmp_path / "prep"
    flag = "--video-max-decoded-megapixels"
    assert _preprocess(manifest, out, "video", flag, "0.018432") == {}  # 18 x 32 x 32
    over = _preprocess(manifest, out, "video", flag, "0.018431")
    assert over == {
        4: "decoding 18 frames of 32x32 is 0.018432 megapixels, over the 0.018431 budget "
        "(raise --video-max-decoded-megapixels)"
    }


def test_decoding_stops_when_the_frames_outgrow_the_header(root, tmp_path):
    # Header: 32x32 (20 frames, 18 decoded: 0.018 megapixels); frames 11 to 20 are
    # 256x256, so decoding costs 10 x 1024 + 8 x 65536 = 534,528 pixels.
    _growing(root / "grow.avi", 32, 256, 10, 10)
    manifest = _manifest(root, "video", "grow.avi")
    flag = "--video-max-decoded-megapixels"
    assert _preprocess(manifest, tmp_path / "a", "video", flag, "0.534528") == {}
    over = _preprocess(manifest, tmp_path / "b", "video", flag, "0.1")
    assert over == {
        4: "decoding passed the 0.1 megapixel budget after 12 frames (the last 256x256; "
        "raise --video-max-decoded-megapixels)"
    }


def test_default_budget_refuses_a_clip_of_many_huge_skip_frames(root, tmp_path):
    # 6,000 frames of 4096x4096 in 0.3 MB; 4 sampled, up to frame 5250: 30 s of decoding.
    _skip_bomb(root / "bomb.mp4", 4096, 6000)
    assert (root / "bomb.mp4").stat().st_size < 1 << 20
    reasons = _preprocess(_manifest(root, "video", "bomb.mp4"), tmp_path / "prep", "video")
    assert reasons == {
        4: "decoding 5251 frames of 4096x4096 is 88097.2 megapixels, over the 80000 budget "
        "(raise --video-max-decoded-megapixels)"
    }


# -- records and predict ----------------------------------------------------------------
def test_budget_defaults_are_one_value_and_old_schemas_load():
    for name in BUDGETS:
        assert TableSchema.model_fields[name].default == PreprocessConfig.model_fields[name].default
    old = {
        "columns": [{"name": "m", "type": "audio", "inferred": True}],
        "target": {"name": "label", "task": "classification", "classes": ["a", "b"]},
        "image_size": 64,
        "sample_rate": 16000,
        "audio_seconds": 2.0,
        "video_frames": 8,
        "video_max_seconds": 120.0,
    }
    schema = TableSchema.model_validate(old)  # a record written before the budgets
    assert schema.audio_max_decoded_mb == 2000.0
    assert schema.video_max_decoded_megapixels == 80_000.0


@pytest.fixture(scope="module")
def small_budget_model(tmp_path_factory) -> tuple[Path, Path]:
    """A model over an audio and a video column, preprocessed with small budgets."""
    root = tmp_path_factory.mktemp("budgets")
    rows = []
    for i in range(12):
        _flac(root / f"a{i}.flac", 8000, 1, 0.5 + 0.1 * (i % 2))
        write_clip(root / f"v{i}.mp4", clip_frames(i % 2, 8, 24, np.random.default_rng(i)), fps=8)
        rows.append({"a": f"a{i}.flac", "v": f"v{i}.mp4", "label": "xy"[i % 2]})
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    work = root / "work"
    budgets = ["--audio-max-decoded-mb", "0.2", "--video-max-decoded-megapixels", "0.02"]
    media = ["--input", "a:audio,v:video", "--sample-rate", "8000", "--audio-seconds", "1"]
    video = ["--video-frames", "4", "--image-size", "16"]
    run_ok("preprocess", root / "train.csv", "--out", work / "prep", *media, *video, *budgets)
    run_ok("extract-features", work / "prep", "--out", work / "feats")
    run_ok("fuse", work / "feats", "--out", work / "fused")
    run_ok("train", work / "fused", "--out", work / "model", "--epochs", "3")
    return root, work / "model"


def test_predict_gives_a_row_over_a_stored_budget_its_error_cell(small_budget_model, tmp_path):
    root, model = small_budget_model
    _flac(root / "big.flac", 8000, 2, 4.0)  # 0.256 MB: the default would take it
    write_clip(root / "long.mp4", clip_frames(0, 40, 24, np.random.default_rng(9)), fps=8)
    table = root / "new.csv"
    pd.DataFrame(
        {"a": ["a0.flac", "big.flac", "a1.flac"], "v": ["v0.mp4", "v1.mp4", "long.mp4"]}
    ).to_csv(table, index=False)
    run_ok("predict", model, table, "--out", tmp_path / "pred.csv")
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert pd.isna(pred["error"][0]) and pred["prediction"].notna()[0]
    assert pred["error"][1].startswith("a: decodes to 0.256 MB")
    assert "over the 0.2 MB budget (raise --audio-max-decoded-mb)" in pred["error"][1]
    assert pred["error"][2].startswith("v: decoding 36 frames of 24x24 is 0.020736 megapixels")
    assert pred["prediction"].isna()[1:].all()
