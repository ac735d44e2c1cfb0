"""The shipped Makefile example: real `make` runs the chain, a second `make` does nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _other_image(path: Path) -> bytes:
    """The image at ``path`` with its pixels inverted: the same name, other content."""
    import io

    from PIL import Image, ImageOps

    with Image.open(path) as img:
        out = io.BytesIO()
        ImageOps.invert(img.convert("RGB")).save(out, format="PNG")
    return out.getvalue()


def _make(args, cwd):
    result = subprocess.run(args, capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return [s for s in STAGES if f"mmcli {s} " in result.stdout or f"/mmcli {s} " in result.stdout]


STAGES = ("preprocess", "extract-features", "fuse", "train", "evaluate")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_runs_the_chain_and_reruns_exactly_what_changed(dataset_copy, tmp_path):
    config = tmp_path / "config"
    shutil.copytree(ROOT / "examples/config", config)
    (config / "train.yaml").write_text("model: mlp\nepochs: 30\nseed: 0\n")  # quick
    mmcli = Path(sys.executable).parent / "mmcli"
    args = [
        "make",
        "-j4",
        "-f",
        str(ROOT / "examples/pipeline.mk"),
        f"MMCLI={mmcli}",
        f"MANIFEST={dataset_copy}",
        f"WORK={tmp_path / 'work'}",
        f"CONFIG={config}",
        "FLAGS=--quiet",
    ]
    assert _make(args, tmp_path) == list(STAGES)
    assert (tmp_path / "work/eval/metrics.json").exists()
    # nothing to do: preprocess is always asked (make cannot see the media files), finds
    # everything up to date and leaves its output alone, so nothing below it runs
    assert _make(args, tmp_path) == ["preprocess"]

    # a parameter change reruns that stage and those below it, nothing above
    (config / "train.yaml").write_text("model: logistic\nepochs: 30\nseed: 0\n")
    assert _make(args, tmp_path) == ["preprocess", "train", "evaluate"]
    assert _make(args, tmp_path) == ["preprocess"]

    # touching the manifest without changing it: no cascade either
    dataset_copy.touch()
    assert _make(args, tmp_path) == ["preprocess"]

    # a changed image (the manifest untouched) reruns the whole chain, as status says
    image = dataset_copy.parent / pd.read_csv(dataset_copy)["image"].dropna().iloc[0]
    status = [str(mmcli), "status", str(tmp_path / "work/eval")]
    assert subprocess.run(status, capture_output=True).returncode == 0
    image.write_bytes(_other_image(image))
    assert subprocess.run(status, capture_output=True).returncode == 8  # stale
    assert _make(args, tmp_path) == list(STAGES)
    assert subprocess.run(status, capture_output=True).returncode == 0

    # a real change to the manifest reruns the whole chain
    text = dataset_copy.read_text().splitlines()
    dataset_copy.write_text("\n".join(text[:-3]) + "\n")
    assert _make(args, tmp_path) == list(STAGES)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_runs_shards_side_by_side_and_merges_them(dataset, tmp_path):
    mmcli = Path(sys.executable).parent / "mmcli"
    args = [
        "make",
        "-j3",
        "-f",
        str(ROOT / "examples/shards.mk"),
        f"MMCLI={mmcli}",
        f"MANIFEST={dataset}",
        f"WORK={tmp_path / 'work'}",
        "SHARDS=2",
        "FLAGS=--quiet",
    ]
    result = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("--shard") == 4 and result.stdout.count(" merge ") == 2
    for stage, out in (("preprocess", "prep"), ("extract-features", "feats")):
        source = dataset if stage == "preprocess" else tmp_path / "whole" / "prep"
        subprocess.run(
            [mmcli, stage, source, "--out", tmp_path / "whole" / out, "--quiet"], check=True
        )
        for name in (
            "rows.parquet",
            f"{'arrays/image' if out == 'prep' else 'features/image'}.npy",
        ):
            assert (tmp_path / "work" / out / name).read_bytes() == (
                tmp_path / "whole" / out / name
            ).read_bytes()
