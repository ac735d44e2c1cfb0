"""Per-sample incremental work, worker counts and sharding: same bytes, less work."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import invoke, run_ok
from PIL import Image

from mmcli.artifacts import filecache
from mmcli.config import ExtractConfig, PreprocessConfig
from mmcli.encoders.audio import AudioMFCC
from mmcli.encoders.image import ImageStats
from mmcli.encoders.text import TextTfidf
from mmcli.errors import EXIT_USAGE, MmcliError
from mmcli.io import tables
from mmcli.stages import extract_features, media, preprocess


def digest(artifact: Path) -> dict[str, str]:
    """SHA-256 of every data file of an artifact (all but its record)."""
    return {
        p.relative_to(artifact).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(artifact.rglob("*"))
        if p.is_file() and p.name != "mmcli.json"
    }


class Counter:
    """Wraps a function and counts calls."""

    def __init__(self, fn):
        self.fn, self.count = fn, 0

    def __call__(self, *args, **kwargs):
        self.count += 1
        return self.fn(*args, **kwargs)


def count_rows(monkeypatch, cls) -> list[int]:
    """Count the rows an encoder class transforms."""
    seen = [0]
    original = cls.transform

    def transform(self, values):
        seen[0] += len(values)
        return original(self, values)

    monkeypatch.setattr(cls, "transform", transform)
    return seen


def build(manifest: Path, work: Path, **options) -> tuple[dict, dict]:
    prep = preprocess.run(
        PreprocessConfig(manifest=manifest, out=work / "prep", workers=1, **options)
    )
    feats = extract_features.run(ExtractConfig(prep=work / "prep", out=work / "feats", workers=1))
    return prep, feats


def test_changed_and_added_rows_are_the_only_work(dataset_copy, tmp_path, monkeypatch):
    root = dataset_copy.parent
    build(dataset_copy, tmp_path / "inc")
    df = pd.read_csv(dataset_copy)
    for row in (5, 17):  # change two image files
        path = root / df.loc[row, "image"]
        pixels = np.asarray(Image.open(path)).copy()
        pixels[0, 0] = 255 - pixels[0, 0]
        Image.fromarray(pixels).save(path)
    added = df.iloc[[0]].copy()  # a new row: a new image, and audio with known content
    shutil.copy(root / df.loc[0, "image"], root / "images" / "new.png")
    Image.fromarray(np.full((24, 24, 3), 7, np.uint8)).save(root / "images" / "new.png")
    added["id"], added["image"] = "new", "images/new.png"
    pd.concat([df, added]).to_csv(dataset_copy, index=False)

    images = Counter(media.load_image)
    audio = Counter(media.load_audio)
    monkeypatch.setattr(media, "load_image", images)
    monkeypatch.setattr(media, "load_audio", audio)
    stats, mfcc = count_rows(monkeypatch, ImageStats), count_rows(monkeypatch, AudioMFCC)
    prep, feats = build(dataset_copy, tmp_path / "inc")
    assert prep["status"] == feats["status"] == "built"
    assert (images.count, audio.count) == (3, 0)  # the new row's audio is a file seen before
    assert (stats[0], mfcc[0]) == (3, 0)

    monkeypatch.undo()
    build(dataset_copy, tmp_path / "clean")
    for artifact in ("prep", "feats"):
        assert digest(tmp_path / "inc" / artifact) == digest(tmp_path / "clean" / artifact)
        # hashed while written, or linked with the old record's hash: still the file's hash
        outputs = json.loads((tmp_path / "inc" / artifact / "mmcli.json").read_text())["outputs"]
        assert {name: info["sha256"] for name, info in outputs.items()} == digest(
            tmp_path / "inc" / artifact
        )


def test_no_op_rerun_rereads_no_file(dataset, tmp_path, monkeypatch):
    build(dataset, tmp_path)
    hashed = Counter(filecache.read_and_hash_fd)  # every read of an input file goes through it
    monkeypatch.setattr(filecache, "read_and_hash_fd", hashed)
    monkeypatch.setattr(media, "read_and_hash_fd", hashed)
    prep, feats = build(dataset, tmp_path)
    assert prep["status"] == feats["status"] == "up-to-date"
    assert hashed.count == 0


@pytest.mark.parametrize(
    "stage, heavy",
    [
        ("preprocess", ("pandas", "sklearn", "torch", "librosa")),
        ("extract-features", ("pandas", "pyarrow", "PIL", "soundfile", "sklearn", "torch")),
    ],
)
def test_an_up_to_date_stage_loads_no_table_library(dataset, tmp_path, stage, heavy):
    """The no-op answer needs records and stat calls, not pandas or the encoders."""
    build(dataset, tmp_path)
    args = {
        "preprocess": ["preprocess", str(dataset), "--out", str(tmp_path / "prep")],
        "extract-features": [
            "extract-features",
            str(tmp_path / "prep"),
            "--out",
            str(tmp_path / "feats"),
        ],
    }[stage]
    code = (
        "import sys, runpy, json\n"
        f"sys.argv = ['mmcli', *{args!r}, '--json', '--workers', '1']\n"
        "try:\n    runpy.run_module('mmcli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert '"up-to-date"' in out.stdout and json.loads(lines[-1]) == []


def test_up_to_date_preprocess_reads_no_manifest_table_yet_sees_a_file_appear(
    dataset_copy, tmp_path, monkeypatch
):
    """The no-op check lists the files from the artifact, not the manifest; a row whose
    file was missing is still looked at again, and built once the file is there."""
    image = dataset_copy.parent / pd.read_csv(dataset_copy).loc[3, "image"]
    content = image.read_bytes()
    image.unlink()
    reads = Counter(tables.read_table)
    monkeypatch.setattr(tables, "read_table", reads)
    cfg = PreprocessConfig(manifest=dataset_copy, out=tmp_path / "prep", workers=1, on_error="keep")
    assert preprocess.run(cfg)["status"] == "built"
    assert preprocess.run(cfg)["status"] == "up-to-date"
    assert reads.count == 1  # the build; the up-to-date answer never read the manifest
    image.write_bytes(content)
    assert preprocess.run(cfg)["status"] == "built"
    assert reads.count == 2
    assert preprocess.run(cfg)["status"] == "up-to-date"
    assert reads.count == 2
    kept = pd.read_parquet(tmp_path / "prep" / "rows.parquet")
    assert kept["_present.image"].all()


def test_up_to_date_preprocess_sees_a_new_manifest_format_or_a_damaged_file_list(
    dataset_copy, tmp_path
):
    """Same manifest bytes under another format's name is another table; a file list that
    cannot be read sends the check down the full path, which rebuilds."""
    cfg = PreprocessConfig(manifest=dataset_copy, out=tmp_path / "prep", workers=1)
    preprocess.run(cfg)
    renamed = dataset_copy.with_suffix(".tsv")
    shutil.copy(dataset_copy, renamed)
    with pytest.raises(MmcliError):  # a CSV read as TSV has no target column
        preprocess.run(cfg.model_copy(update={"manifest": renamed}))
    pq.write_table(pa.table({"path": ["x"]}), tmp_path / "prep" / "files.parquet")
    assert preprocess.run(cfg)["status"] == "built"
    assert preprocess.run(cfg)["status"] == "up-to-date"


def test_new_decoding_parameters_reuse_nothing(dataset, tmp_path, monkeypatch):
    preprocess.run(PreprocessConfig(manifest=dataset, out=tmp_path / "prep", workers=1))
    images = Counter(media.load_image)
    monkeypatch.setattr(media, "load_image", images)
    preprocess.run(
        PreprocessConfig(manifest=dataset, out=tmp_path / "prep", workers=1, image_size=32)
    )
    assert images.count == len(pd.read_csv(dataset))


def test_results_do_not_depend_on_workers(dataset, tmp_path):
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        run_ok("preprocess", dataset, "--out", out / "prep", "--workers", workers)
        run_ok("extract-features", out / "prep", "--out", out / "feats", "-j", workers)
    for artifact in ("prep", "feats"):
        assert digest(tmp_path / "w1" / artifact) == digest(tmp_path / "w2" / artifact)


@pytest.fixture()
def awkward(dataset_copy) -> Path:
    """The dataset with a duplicate id across shards, a corrupt image and a missing file."""
    df = pd.read_csv(dataset_copy)
    df.loc[70, "id"] = df.loc[10, "id"]
    (dataset_copy.parent / df.loc[40, "image"]).write_bytes(b"\x89PNG not really")
    df.loc[55, "audio"] = "audio/gone.wav"
    df.to_csv(dataset_copy, index=False)
    return dataset_copy


def test_shards_merge_into_the_bytes_of_one_run(awkward, tmp_path):
    run_ok("preprocess", awkward, "--out", tmp_path / "prep")
    shards = [tmp_path / f"prep-{k}" for k in (1, 2, 3)]
    for k, out in enumerate(shards, 1):
        result = run_ok("preprocess", awkward, "--shard", f"{k}/3", "--out", out, "--json")
        assert f'"shard": "{k}/3"' in result.stdout
    merged = run_ok("merge", *reversed(shards), "--out", tmp_path / "merged")
    assert "rejected 3" in merged.stdout
    assert digest(tmp_path / "merged") == digest(tmp_path / "prep")
    again = run_ok("preprocess", awkward, "--out", tmp_path / "merged")
    assert "up-to-date" in again.stdout  # the merged artifact carries the unsharded key

    run_ok("extract-features", tmp_path / "prep", "--out", tmp_path / "feats")
    parts = [tmp_path / f"feats-{k}" for k in (1, 2)]
    for k, out in enumerate(parts, 1):
        run_ok("extract-features", tmp_path / "prep", "--shard", f"{k}/2", "--out", out)
    run_ok("merge", *parts, "--out", tmp_path / "feats-merged")
    assert digest(tmp_path / "feats-merged") == digest(tmp_path / "feats")


def test_shards_are_refused_where_a_whole_artifact_is_needed(dataset, tmp_path):
    for k in (1, 2):
        run_ok("preprocess", dataset, "--shard", f"{k}/2", "--out", tmp_path / f"p{k}")
    result = invoke("extract-features", tmp_path / "p1", "--out", tmp_path / "feats")
    assert result.exit_code == EXIT_USAGE
    assert "shard 1/2" in result.stderr and "mmcli merge" in result.stderr

    result = invoke("merge", tmp_path / "p1", "--out", tmp_path / "m")
    assert result.exit_code == EXIT_USAGE and "missing 2" in result.stderr

    run_ok("preprocess", dataset, "--shard", "2/2", "--out", tmp_path / "other", "--seed", "5")
    result = invoke("merge", tmp_path / "p1", tmp_path / "other", "--out", tmp_path / "m")
    assert result.exit_code == EXIT_USAGE and "not shards of one run" in result.stderr

    run_ok("preprocess", dataset, "--out", tmp_path / "whole")
    result = invoke("merge", tmp_path / "p1", tmp_path / "whole", "--out", tmp_path / "m")
    assert result.exit_code == EXIT_USAGE and "not a shard" in result.stderr

    for bad in ("0/2", "3/2", "x/2"):
        result = invoke("preprocess", dataset, "--shard", bad, "--out", tmp_path / "bad")
        assert result.exit_code == EXIT_USAGE, bad


def test_video_rows_are_reused_with_their_soundtrack(tmp_path, monkeypatch):
    from videogen import make_video_dataset

    manifest = make_video_dataset(tmp_path / "data", n=6, silent_every=3)
    options = {"image_size": 16, "video_frames": 3, "audio_seconds": 0.5}
    preprocess.run(PreprocessConfig(manifest=manifest, out=tmp_path / "inc", workers=1, **options))
    df = pd.read_csv(manifest)
    df.loc[1, "clip"] = df.loc[0, "clip"]  # a row now names another, already decoded clip
    df.to_csv(manifest, index=False)
    videos = Counter(media.load_video)
    monkeypatch.setattr(media, "load_video", videos)
    preprocess.run(PreprocessConfig(manifest=manifest, out=tmp_path / "inc", workers=1, **options))
    assert videos.count == 0
    monkeypatch.undo()
    preprocess.run(
        PreprocessConfig(manifest=manifest, out=tmp_path / "clean", workers=1, **options)
    )
    assert digest(tmp_path / "inc") == digest(tmp_path / "clean")
    rows = pd.read_parquet(tmp_path / "clean" / "rows.parquet")
    assert not rows["_present.clip.audio"].all() and rows["_present.clip"].all()


def _touch_image(path: Path) -> None:
    pixels = np.asarray(Image.open(path)).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(path)


def test_an_unchanged_column_keeps_its_array_file(dataset_copy, tmp_path):
    """Only images change: the audio array is the old file, linked, not copied or rehashed."""
    root, work = dataset_copy.parent, tmp_path / "inc"
    build(dataset_copy, work)
    inode = (work / "prep/arrays/audio.npy").stat().st_ino
    df = pd.read_csv(dataset_copy)
    _touch_image(root / df.loc[3, "image"])
    build(dataset_copy, work)
    assert (work / "prep/arrays/audio.npy").stat().st_ino == inode
    audio_sha = hashlib.sha256((work / "prep/arrays/audio.npy").read_bytes()).hexdigest()
    assert audio_sha in (work / "prep/mmcli.json").read_text()
    build(dataset_copy, tmp_path / "clean")
    assert digest(work / "prep") == digest(tmp_path / "clean/prep")

    # an image that no longer decodes sets its row aside: the audio rows left are taken
    # from the old file
    (root / df.loc[8, "image"]).write_bytes(b"\x89PNG broken")
    build(dataset_copy, work)
    assert (work / "prep/arrays/audio.npy").stat().st_ino != inode
    build(dataset_copy, tmp_path / "clean2")
    assert digest(work / "prep") == digest(tmp_path / "clean2/prep")
    record = (work / "prep/mmcli.json").read_text()
    assert hashlib.sha256((work / "prep/arrays/audio.npy").read_bytes()).hexdigest() in record


def test_unchanged_text_number_and_category_columns_are_linked_not_refitted(
    dataset_copy, tmp_path, monkeypatch
):
    """A text, number or category column whose values and train rows are unchanged keeps
    its features and fitted state: linked from the previous output, nothing refitted."""
    root, work = dataset_copy.parent, tmp_path / "inc"
    build(dataset_copy, work)
    feats = work / "feats"
    before = {p.name: p.stat().st_ino for p in feats.rglob("*") if p.is_file()}
    df = pd.read_csv(dataset_copy)
    _touch_image(root / df.loc[3, "image"])
    fits, original = [], TextTfidf.fit
    monkeypatch.setattr(TextTfidf, "fit", lambda self, values: fits.append(original(self, values)))
    build(dataset_copy, work)
    after = {p.name: p.stat().st_ino for p in feats.rglob("*") if p.is_file()}
    for slug in ("caption", "weight", "colour"):
        assert after[f"{slug}.npy"] == before[f"{slug}.npy"]
        assert after[f"{slug}.json"] == before[f"{slug}.json"]
    assert after["image.npy"] != before["image.npy"]
    assert fits == []

    df.loc[4, "caption"] = "an entirely new caption"  # the text column changes, alone
    df.to_csv(dataset_copy, index=False)
    build(dataset_copy, work)
    again = {p.name: p.stat().st_ino for p in feats.rglob("*") if p.is_file()}
    assert again["caption.npy"] != after["caption.npy"] and len(fits) == 1
    assert again["weight.npy"] == before["weight.npy"]
    monkeypatch.undo()
    build(dataset_copy, tmp_path / "clean")
    assert digest(feats) == digest(tmp_path / "clean/feats")


def test_a_row_left_empty_is_zeros_though_its_buffer_held_an_earlier_chunk(
    dataset_copy, tmp_path, monkeypatch
):
    """Workers reuse one buffer from chunk to chunk: a missing file's row, kept, must
    read as zeros, not as the row decoded at that place in the chunk before."""
    monkeypatch.setattr(preprocess, "CHUNK", 4)
    df = pd.read_csv(dataset_copy)
    (dataset_copy.parent / df.loc[5, "image"]).unlink()  # row 1 of the 2nd chunk
    cfg = PreprocessConfig(manifest=dataset_copy, out=tmp_path / "prep", workers=1, on_error="keep")
    preprocess.run(cfg)
    rows = pd.read_parquet(tmp_path / "prep" / "rows.parquet")
    images = np.load(tmp_path / "prep" / "arrays" / "image.npy")
    at = {row: i for i, row in enumerate(rows["_row"])}
    assert not rows["_present.image"][at[5]]
    assert not images[at[5]].any()
    assert images[at[1]].any() and images[at[9]].any()  # the same place, decoded
