"""Files that change between the check and the read: a file swapped for a symlink to a
file outside the data folder, a folder swapped for a link, a FIFO, other content. The
swap happens at the worst moment (after every path was resolved and checked, before any
worker opens a file): nothing from outside is ever decoded, nothing hangs, and the hash
recorded for a row is the hash of the bytes decoded for it."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
from conftest import cli

#: After preprocess has resolved and checked every media path, change the files as
#: MMCLI_TEST_SWAP says, before any of them is opened to decode.
HOOK = """\
import os, shutil
from mmcli.stages import preprocess
_real = preprocess.hash_sources
def _swap(cells, root, *args, **kwargs):
    sources = _real(cells, root, *args, **kwargs)
    how, target = os.environ["MMCLI_TEST_SWAP"].split(":", 1)
    for cell, path in sorted(sources.paths.items()):
        if not cell.startswith("images/"):
            continue
        if how == "symlink":
            os.unlink(path)
            os.symlink(target, path)
        elif how == "fifo":
            os.unlink(path)
            os.mkfifo(path)
        elif how == "content":
            shutil.copyfile(target, path)
    if how == "folder":
        images = os.path.join(str(root), "images")
        os.rename(images, images + ".moved")
        os.symlink(target, images)
    return sources
preprocess.hash_sources = _swap
"""


@pytest.fixture()
def swap_env(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOOK)
    path = os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])

    def env(how: str, target) -> dict[str, str]:
        return {"PYTHONPATH": path, "MMCLI_TEST_SWAP": f"{how}:{target}"}

    return env


def _secret(dataset_copy):
    """An image outside the data folder, of a colour no sample image has."""
    from PIL import Image

    secret = dataset_copy.parent.parent / "secret.png"
    Image.new("RGB", (32, 32), (255, 0, 255)).save(secret)
    return secret


def _never_magenta(prep) -> None:
    images = np.load(prep / "arrays" / "image.npy")
    magenta = (images[..., 0] > 250) & (images[..., 1] < 5) & (images[..., 2] > 250)
    assert not magenta.all(axis=(1, 2)).any(), "a row was decoded from outside"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_file_swapped_for_a_link_outside_is_refused(dataset_copy, tmp_path, swap_env, workers):
    out = tmp_path / "prep"
    env = swap_env("symlink", _secret(dataset_copy))
    result = cli(
        "preprocess", dataset_copy, "--out", out, "--on-error", "keep", "--workers", workers,
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rejected = pd.read_parquet(out / "rejected.parquet")
    image_rows = rejected[rejected["column"] == "image"]
    assert len(image_rows) == len(pd.read_csv(dataset_copy))  # every image row
    assert image_rows["reason"].str.contains("symbolic link").all()
    rows = pd.read_parquet(out / "rows.parquet")
    assert not rows["_present.image"].any()
    _never_magenta(out)


def test_a_folder_swapped_for_a_link_outside_is_refused(dataset_copy, tmp_path, swap_env):
    outside = dataset_copy.parent.parent / "elsewhere"
    outside.mkdir()
    secret = _secret(dataset_copy)
    for name in os.listdir(dataset_copy.parent / "images"):
        (outside / name).write_bytes(secret.read_bytes())
    out = tmp_path / "prep"
    result = cli(
        "preprocess", dataset_copy, "--out", out, "--on-error", "keep", "--workers", "2",
        env=swap_env("folder", outside),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rejected = pd.read_parquet(out / "rejected.parquet")
    assert rejected["reason"].str.contains("outside the data folder").sum() == len(
        pd.read_csv(dataset_copy)
    )
    _never_magenta(out)


def test_a_file_swapped_for_a_fifo_is_refused_without_waiting(dataset_copy, tmp_path, swap_env):
    out = tmp_path / "prep"
    result = cli(
        "preprocess", dataset_copy, "--out", out, "--on-error", "keep",
        env=swap_env("fifo", "-"), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reasons = pd.read_parquet(out / "rejected.parquet")["reason"]
    assert reasons.str.contains("no longer a regular file").sum() == len(pd.read_csv(dataset_copy))


def test_the_hash_recorded_is_the_hash_of_what_was_decoded(dataset_copy, tmp_path, swap_env):
    """Every image replaced by other content after it was hashed: each row's hash, in
    rows.parquet and files.parquet, is the new content's, and so is the decoded row."""
    out = tmp_path / "prep"
    cli("preprocess", dataset_copy, "--out", tmp_path / "first")  # fills the stat cache
    secret = _secret(dataset_copy)
    # the stat cache beside the first output would serve the old hashes: share it
    os.replace(tmp_path / ".first.files.json", tmp_path / ".prep.files.json")
    result = cli("preprocess", dataset_copy, "--out", out, env=swap_env("content", secret))
    assert result.returncode == 0, result.stderr
    new = hashlib.sha256(secret.read_bytes()).hexdigest()
    rows = pd.read_parquet(out / "rows.parquet")
    assert set(rows["_sha.image"]) == {new}
    files = pd.read_parquet(out / "files.parquet")
    assert set(files.loc[files["file"].str.startswith("images/"), "sha256"]) == {new}
    images = np.load(out / "arrays" / "image.npy")
    assert (images[..., 0] > 250).all() and (images[..., 1] < 5).all()
