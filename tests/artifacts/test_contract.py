"""The artifact contract at the seams between stages (issue 15): answers that hold from any
folder, readers that verify what they read, chains that cannot loop, outputs that never
overlap inputs, keys built from resolved values, records of an older format refused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import invoke, run_ok

PIPELINE = """\
manifest: data/manifest.csv
out: work
train: {epochs: 8, patience: 4}
"""


@pytest.fixture(scope="module")
def built(dataset: Path, tmp_path_factory) -> Path:
    """base/data (the dataset) and base/work (the whole chain, built by `mmcli run`)."""
    base = tmp_path_factory.mktemp("contract")
    shutil.copytree(dataset.parent, base / "data")
    (base / "pipeline.yaml").write_text(PIPELINE)
    here = os.getcwd()
    os.chdir(base)  # relative paths, as a user types them: the record must not keep them so
    try:
        run_ok("run", "pipeline.yaml")
    finally:
        os.chdir(here)
    return base


@pytest.fixture()
def base(built: Path, tmp_path: Path) -> Path:
    """A private copy of ``built`` that a test may change or move."""
    shutil.copytree(built, tmp_path / "base", symlinks=True)
    return tmp_path / "base"


def _mmcli(*args, cwd=None, timeout=60):
    """mmcli in a subprocess with a time limit: for cases that used to hang."""
    return subprocess.run(
        [sys.executable, "-m", "mmcli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def _edit_record(artifact: Path, change) -> None:
    path = artifact / "mmcli.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def _flip_tail(path: Path, n: int = 16) -> None:
    """Change a file in place, keeping its size (and a valid header)."""
    data = bytearray(path.read_bytes())
    data[-n:] = bytes(255 - b for b in data[-n:])
    with open(path, "r+b") as f:
        f.write(data)


def _all_up_to_date(result) -> bool:
    return result.exit_code == 0 and "would-build" not in result.stdout


@pytest.mark.parametrize("where", ["parent", "root", "moved"])
def test_status_dry_run_and_noop_agree_from_any_folder(base, where, monkeypatch, tmp_path):
    if where == "moved":
        shutil.move(base / "work", base / "work2")
        work = base / "work2"
        (base / "pipeline.yaml").write_text(PIPELINE.replace("out: work", "out: work2"))
    else:
        work = base / "work"
    monkeypatch.chdir(base.parent if where != "root" else "/")
    status = invoke("status", *(work / s for s in ("prep", "feats", "fused", "model", "eval")))
    assert status.exit_code == 0, status.stdout + status.stderr
    assert "stale" not in status.stdout and "gone" not in status.stdout
    dry = invoke("run", base / "pipeline.yaml", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    states = {s["stage"]: s["status"] for s in json.loads(dry.stdout)["stages"]}
    assert set(states.values()) == {"up-to-date"}, states
    again = invoke("fuse", work / "feats", "--out", work / "fused", "--json")
    assert json.loads(again.stdout)["status"] == "up-to-date"
    prep = invoke("preprocess", base / "data" / "manifest.csv", "--out", work / "prep", "--json")
    assert json.loads(prep.stdout)["status"] == "up-to-date"


@pytest.mark.parametrize("where", ["parent", "root", "moved"])
def test_a_changed_image_gives_one_root_cause_everywhere(base, where, monkeypatch):
    """status, run --dry-run and inspect name the same root cause, with the paths typed."""
    name = "work2" if where == "moved" else "work"
    if where == "moved":
        shutil.move(base / "work", base / "work2")
        (base / "pipeline.yaml").write_text(PIPELINE.replace("out: work", "out: work2"))
    image = sorted((base / "data" / "images").iterdir())[3]
    _flip_tail(image)
    monkeypatch.chdir(base.parent if where != "root" else "/")
    work = Path(base.name, name) if where != "root" else base / name
    cause = f"{work / 'prep'} is stale: images/{image.name} changed"
    status = invoke("status", work / "eval", "--json")
    assert status.exit_code == 8
    [verdict] = json.loads(status.stdout)["artifacts"]
    assert verdict["state"] == "stale" and verdict["reasons"][0] == cause, verdict
    pipeline = Path(base.name, "pipeline.yaml") if where != "root" else base / "pipeline.yaml"
    dry = json.loads(invoke("run", pipeline, "--dry-run", "--json").stdout)["stages"]
    assert dry[0]["status"] == "would-build" and dry[0]["why"] == cause, dry[0]
    shown = json.loads(invoke("inspect", work / "fused", "--json").stdout)["state"]
    assert shown["state"] == "stale" and shown["reasons"][0] == cause


def test_record_paths_are_relative_to_the_artifact(base):
    record = json.loads((base / "work" / "prep" / "mmcli.json").read_text())
    manifest = record["inputs"]["manifest"]["path"]
    assert not os.path.isabs(manifest)
    assert (base / "work" / "prep" / manifest).resolve() == (base / "data" / "manifest.csv")
    assert not os.path.isabs(record["paths"]["data_root"])


@pytest.mark.parametrize("edit", ["fewer-rows", "same-rows"])
def test_evaluate_refuses_a_manifest_edited_after_preprocess(base, edit):
    manifest = base / "data" / "manifest.csv"
    lines = manifest.read_text().splitlines(keepends=True)
    if edit == "fewer-rows":
        manifest.write_text("".join(lines[:5]))
    else:
        lines[3] = lines[3].replace("r002", "r999")
        manifest.write_text("".join(lines))
    work = base / "work"
    result = invoke("evaluate", work / "model", work / "fused", "--out", work / "e2", "--force")
    assert result.exit_code == 4, result.stdout + result.stderr
    assert "manifest" in result.stderr and "internal error" not in result.stderr
    assert not (work / "e2").exists()


def test_a_file_changed_in_place_with_its_size_is_refused(base):
    work = base / "work"
    weights = work / "model" / "model.safetensors"
    _flip_tail(weights)
    predicted = invoke(
        "predict", work / "model", base / "data" / "manifest.csv", "--out", base / "p.csv"
    )
    assert predicted.exit_code == 4 and "model.safetensors" in predicted.stderr
    evaluated = invoke("evaluate", work / "model", work / "fused", "--out", base / "e2")
    assert evaluated.exit_code == 4 and "model.safetensors" in evaluated.stderr
    features = next((work / "feats" / "features").glob("*.npy"))
    _flip_tail(features)
    fused = invoke("fuse", work / "feats", "--out", base / "f2")
    assert fused.exit_code == 4 and features.name in fused.stderr
    assert not (base / "f2").exists()


@pytest.mark.parametrize("loop", ["self", "two"])
def test_a_looping_chain_is_an_error_not_a_hang(base, loop):
    work = base / "work"
    fused = json.loads((work / "fused" / "mmcli.json").read_text())
    feats = json.loads((work / "feats" / "mmcli.json").read_text())
    if loop == "self":

        def to_itself(r):
            r["inputs"]["upstream"] = {
                "stage": "fuse",
                "path": ".",
                "fingerprint": r["fingerprint"],
            }

        _edit_record(work / "fused", to_itself)
    else:

        def to_fused(r):
            r["inputs"]["upstream"] = {
                "stage": "fuse",
                "path": "../fused",
                "fingerprint": fused["fingerprint"],
            }

        def to_feats(r):
            r["inputs"]["upstream"]["fingerprint"] = feats["fingerprint"]

        _edit_record(work / "feats", to_fused)
        _edit_record(work / "fused", to_feats)
    inspected = _mmcli("inspect", work / "fused")
    assert inspected.returncode == 4, inspected.stdout + inspected.stderr
    assert "loop" in inspected.stderr
    status = _mmcli("status", work / "model")
    assert status.returncode == 8 and "loop" in status.stdout + status.stderr
    predicted = _mmcli(
        "predict", work / "model", base / "data" / "manifest.csv", "--out", base / "p.csv"
    )
    assert predicted.returncode == 4 and "Traceback" not in predicted.stderr


@pytest.mark.parametrize("kind", ["escape", "fifo", "symlink"])
def test_only_regular_files_inside_the_artifact_are_opened(base, kind):
    feats = base / "work" / "feats"
    record = json.loads((feats / "mmcli.json").read_text())
    if kind == "escape":
        name = "../../../../dev/zero"
    else:
        name = next(n for n in record["outputs"] if n.startswith("features/"))
        (feats / name).unlink()
        if kind == "fifo":
            os.mkfifo(feats / name)
        else:
            os.symlink("/dev/zero", feats / name)
    _edit_record(feats, lambda r: r["outputs"].setdefault(name, {"bytes": 1, "sha256": "0" * 64}))
    status = _mmcli("status", feats, timeout=20)
    assert status.returncode == 8
    assert name.rsplit("/", 1)[-1] in status.stdout
    fused = _mmcli("fuse", feats, "--out", base / "f2", "--force", timeout=20)
    assert fused.returncode == 4, fused.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("fuse", "work/feats", "--out", "work/feats"),
        ("fuse", "work/feats", "--out", "work/feats/sub"),
        ("fuse", "work/feats", "--out", "work"),
        ("train", "work/fused", "--out", "work/fused"),
        ("extract-features", "work/prep", "--out", "work/prep/feats"),
    ],
)
def test_an_output_overlapping_an_input_is_a_usage_error(base, args, monkeypatch):
    monkeypatch.chdir(base)
    before = {p: p.read_bytes() for p in base.glob("work/*/mmcli.json")}
    result = invoke(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "input" in result.stderr
    assert {p: p.read_bytes() for p in base.glob("work/*/mmcli.json")} == before


def test_naming_a_default_does_not_rebuild(base):
    work = base / "work"
    again = invoke(
        "train", work / "fused", "--out", work / "model", "--model", "auto", "--fusion", "none",
        "--epochs", "8", "--patience", "4", "--json",
    )  # fmt: skip
    assert json.loads(again.stdout)["status"] == "up-to-date"
    (base / "pipeline.yaml").write_text(
        PIPELINE.replace("train: {", "train: {model: auto, loss: auto, ")
    )
    dry = invoke("run", base / "pipeline.yaml", "--dry-run", "--json")
    assert {s["status"] for s in json.loads(dry.stdout)["stages"]} == {"up-to-date"}


def test_a_record_of_an_older_format_asks_for_a_rebuild(base):
    feats = base / "work" / "feats"
    current = json.loads((feats / "mmcli.json").read_text())["format"]
    _edit_record(feats, lambda r: r.update(format=current - 1))
    fused = invoke("fuse", feats, "--out", base / "f2")
    assert fused.exit_code == 4
    assert "older mmcli" in fused.stderr and "--force" in fused.stderr
    assert "Traceback" not in fused.stderr
    assert invoke("status", feats).exit_code == 8
    rebuilt = invoke("extract-features", base / "work" / "prep", "--out", feats, "--json")
    assert json.loads(rebuilt.stdout)["status"] == "built"


def test_stream_hash_equals_hashlib(tmp_path):
    from mmcli.artifacts.hashing import file_sha256

    data = os.urandom(3 * (1 << 20) + 12345)
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
