"""A downloaded or tampered artifact can fail, but never run code."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from conftest import cli

from mmcli.artifacts.hashing import file_sha256
from mmcli.errors import EXIT_MISSING

UNSAFE_ENV = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "TORCH_FORCE_WEIGHTS_ONLY_LOAD": "0"}


class Payload:
    """Unpickling this writes the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _replace(artifact, name, data: bytes):
    """Swap a file and forge the record to match, as an attacker shipping both would."""
    (artifact / name).write_bytes(data)
    record = json.loads((artifact / "mmcli.json").read_text())
    record["outputs"][name] = {"sha256": file_sha256(artifact / name), "bytes": len(data)}
    (artifact / "mmcli.json").write_text(json.dumps(record))


def test_pickled_array_never_runs(work, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    _replace(work / "feats", "features/image.npy", evil.read_bytes())
    result = cli("fuse", work / "feats", "--out", work / "fused2", env=UNSAFE_ENV)
    assert result.returncode == EXIT_MISSING, result.stderr
    assert "unreadable array" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_pickled_checkpoint_never_runs(work, tmp_path, dataset):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"weight": Payload(marker)}, evil)
    _replace(work / "model", "model.safetensors", evil.read_bytes())
    for args in (
        ("evaluate", work / "model", work / "fused", "--out", work / "e2", "--force"),
        ("predict", work / "model", dataset, "--out", tmp_path / "p.csv"),
    ):
        result = cli(*args, env=UNSAFE_ENV)
        assert result.returncode == EXIT_MISSING, result.stderr
        assert "model weights unreadable" in result.stderr
    assert not marker.exists()
    # plain pickle too
    _replace(work / "model", "model.safetensors", pickle.dumps(Payload(marker)))
    assert (
        cli(
            "predict", work / "model", dataset, "--out", tmp_path / "p.csv", env=UNSAFE_ENV
        ).returncode
        == EXIT_MISSING
    )
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "mismatch"])
def test_truncated_or_mismatched_weights_are_clear_errors(work, damage, dataset, tmp_path):
    weights = (work / "model/model.safetensors").read_bytes()
    if damage == "truncate":
        (work / "model/model.safetensors").write_bytes(weights[: len(weights) // 2])
        result = cli("predict", work / "model", dataset, "--out", tmp_path / "p.csv")
        assert result.returncode == EXIT_MISSING and "changed since" in result.stderr
    else:
        from safetensors.torch import save_file

        save_file({"net.weight": torch.zeros(3, 7)}, str(tmp_path / "other.safetensors"))
        _replace(work / "model", "model.safetensors", (tmp_path / "other.safetensors").read_bytes())
        result = cli("predict", work / "model", dataset, "--out", tmp_path / "p.csv")
        assert result.returncode == EXIT_MISSING
        assert "not matching the recorded architecture" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_reports_damage_staleness_and_leftovers(work, dataset_copy, tmp_path):
    ok = cli("status", work / "prep", work / "eval", "--json")
    assert ok.returncode == 0, ok.stdout
    # a tampered output -> incomplete; everything downstream -> stale
    x = np.load(work / "fused/X.npy")
    x[0, 0] += 1
    np.save(work / "fused/X.npy", x)
    result = cli("status", work / "fused", work / "eval", "--json")
    assert result.returncode == 8
    states = {r["artifact"]: r for r in json.loads(result.stdout)["artifacts"]}
    assert states[str(work / "fused")]["state"] == "incomplete"
    assert "X.npy changed or damaged" in states[str(work / "fused")]["reasons"][0]
    assert states[str(work / "eval")]["state"] == "stale"
    (work / ".model.tmp-4242").mkdir()
    text = cli("status", work / "model").stdout
    assert "interrupted run left .model.tmp-4242" in text


def test_status_sees_changed_media_and_manifest(dataset_copy, tmp_path):
    prep = tmp_path / "prep"
    assert cli("preprocess", dataset_copy, "--out", prep).returncode == 0
    assert cli("status", prep).returncode == 0
    image = dataset_copy.parent / "images/007.png"
    image.write_bytes(image.read_bytes() + b"\0")
    result = cli("status", prep)
    assert result.returncode == 8
    assert f"{prep} is stale: images/007.png changed" in result.stdout
    dataset_copy.write_text(dataset_copy.read_text() + "\n")
    assert "manifest" in cli("status", prep).stdout
