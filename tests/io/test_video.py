"""Decoding video: every supported container gives K frames in order and the soundtrack;
short, silent, corrupt and over-long clips behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from videogen import CODECS, clip_frames, tone, write_clip

from mmcli.io import video
from mmcli.io.video import VideoRejected, load_video, sample_indices


def _clip(path, n=12, audio=True, fps=8, size=32):
    rng = np.random.default_rng(0)
    sound = tone(0, n / fps, 16000, rng) if audio else None
    return write_clip(path, clip_frames(0, n, size, rng), fps=fps, audio=sound)


def _square_x(frames: np.ndarray) -> list[float]:
    """Centre column of the red square in each frame (class 0 moves right)."""
    red = frames[..., 0].astype(float) > 150
    cols = np.arange(frames.shape[2])
    return [float((r.sum(0) * cols).sum() / max(r.sum(), 1)) for r in red]


@pytest.mark.parametrize("ext", sorted(CODECS))
def test_each_container_decodes_frames_in_order_and_sound(tmp_path, ext):
    frames, sound = load_video(_clip(tmp_path / f"a{ext}"), 6, 16, 8000, 1.0)
    assert frames.shape == (6, 16, 16, 3) and frames.dtype == np.uint8
    xs = _square_x(frames)
    assert all(a < b for a, b in zip(xs, xs[1:], strict=False)), xs  # uniform, in time order
    assert sound is not None and sound.shape == (8000,) and sound.dtype == np.float32
    assert 0.25 < np.abs(sound[1000:7000]).max() < 0.6  # the tone, mono, resampled


def test_sampling_spreads_over_the_clip_and_repeats_frames_of_a_short_one(tmp_path):
    assert sample_indices(16, 4).tolist() == [2, 6, 10, 14]
    assert sample_indices(3, 8).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    frames, _ = load_video(_clip(tmp_path / "s.mp4", n=3, audio=False), 8, 16, 8000, 1.0)
    assert (frames[0] == frames[2]).all() and (frames[5] == frames[7]).all()
    assert (frames[2] != frames[3]).any() and frames.any(axis=(1, 2, 3)).all()  # no blank pad


def test_a_clip_without_sound_has_no_soundtrack(tmp_path):
    frames, sound = load_video(_clip(tmp_path / "q.webm", audio=False), 4, 16, 8000, 1.0)
    assert sound is None and frames.shape == (4, 16, 16, 3)


def test_a_video_named_otherwise_is_read_by_probing_the_allowed_demuxers(tmp_path):
    path = _clip(tmp_path / "a.mkv")
    path.rename(tmp_path / "a.clip")
    frames, sound = load_video(tmp_path / "a.clip", 4, 16, 8000, 1.0)
    assert frames.shape == (4, 16, 16, 3) and sound is not None


def test_an_over_long_clip_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    path = _clip(tmp_path / "long.mp4", n=24, fps=8)  # 3 s

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a clip that the header already refuses")

    monkeypatch.setattr(video, "_decode", no_decoding)
    with pytest.raises(VideoRejected, match=r"3\.0 s long according to its header.*at most 2 s"):
        load_video(path, 4, 16, 8000, 1.0, max_seconds=2.0)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p, good: p.write_bytes(b""), "empty file"),
        (lambda p, good: p.write_bytes(b"\x00garbage" * 100), "cannot read the video container"),
        (lambda p, good: p.write_bytes(good[: len(good) // 3]), "cannot"),
        (
            lambda p, good: Image.new("RGB", (8, 8)).save(p, format="PNG"),
            "cannot read the video container",
        ),
    ],
    ids=["empty", "garbage", "truncated", "png-named-mp4"],
)
def test_bad_files_are_refused_with_a_reason(tmp_path, make, reason):
    good = _clip(tmp_path / "good.mp4").read_bytes()
    bad = tmp_path / "bad.mp4"
    make(bad, good)
    with pytest.raises(VideoRejected, match=reason):
        load_video(bad, 4, 16, 8000, 1.0)


def test_an_audio_only_file_is_refused(tmp_path):
    import av

    path = tmp_path / "sound.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16")
        frame.sample_rate = 48000
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    with pytest.raises(VideoRejected, match="no video stream"):
        load_video(path, 4, 16, 8000, 1.0)


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_a_clip_with_no_frames_is_refused(tmp_path, ext):
    import av

    path = tmp_path / f"zero{ext}"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        out.start_encoding()  # header and trailer only
    with pytest.raises(VideoRejected, match="no video stream|no frames|cannot read"):
        load_video(path, 4, 16, 8000, 1.0)


def test_a_clip_with_a_display_rotation_is_turned_upright(tmp_path):
    import struct

    # Class 0's square runs along the top edge, left to right. A portrait phone clip is
    # stored like this with a track matrix saying "turn 90 degrees clockwise to show":
    # written here by patching the MP4 track header's matrix.
    data = bytearray(_clip(tmp_path / "a.mp4", audio=False).read_bytes())
    matrix = data.find(b"tkhd") - 4 + 48  # version-0 tkhd: the matrix is 48 bytes in
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    (tmp_path / "r.mp4").write_bytes(bytes(data))
    frames, _ = load_video(tmp_path / "r.mp4", 4, 32, 8000, 1.0)
    red = frames[..., 0].astype(float) > 150
    rows = [float((r.sum(1) * np.arange(32)).sum() / r.sum()) for r in red]
    cols = [float((r.sum(0) * np.arange(32)).sum() / r.sum()) for r in red]
    assert all(a < b for a, b in zip(rows, rows[1:], strict=False)), rows  # now moves down
    assert min(cols) > 20  # along the right edge
