"""evaluate MODEL TABLE: a new labelled table scored through the model's stored chain,
nothing refitted; bad rows left out and listed; gates as on an artifact."""

from __future__ import annotations

import json

import pandas as pd
from conftest import invoke, run_ok
from PIL import Image

from mmcli.errors import EXIT_DATA, EXIT_GATE, EXIT_STALE


def _metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


def test_the_training_table_scores_as_the_artifact_does(work, dataset, tmp_path):
    # The same rows through the stored chain give the numbers of the fuse artifact's rows.
    run_ok("evaluate", work / "model", work / "fused", "--split", "all", "--out", tmp_path / "a")
    result = run_ok("evaluate", work / "model", dataset, "--out", tmp_path / "t", "--json")
    summary = json.loads(result.stdout)
    assert summary["split"] == "table" and summary["rows_rejected"] == 0
    on_artifact, on_table = _metrics(tmp_path / "a"), _metrics(tmp_path / "t")
    for name in ("n", "accuracy", "macro_f1", "log_loss", "roc_auc"):
        assert on_table[name] == on_artifact[name], name
    for name in ("report.html", "report.md", "confusion_matrix.png", "predictions.parquet"):
        assert (tmp_path / "t" / name).is_file()
    # The worst rows' media come from the new table's own decoded arrays.
    assert on_table["worst"] == on_artifact["worst"]
    assert all(set(w["media"]) == {"image", "audio"} for w in on_table["worst"])
    again = json.loads(
        run_ok("evaluate", work / "model", dataset, "--out", tmp_path / "t", "--json").stdout
    )
    assert again["status"] == "up-to-date"


def test_bad_rows_are_left_out_and_listed(work, dataset_copy, tmp_path):
    df = pd.read_csv(dataset_copy, dtype=str, keep_default_na=False)
    df.loc[3, "image"] = "images/gone.png"
    df.loc[5, "label"] = "zebra"  # not a class the model knows
    df.to_csv(dataset_copy, index=False)
    result = run_ok("evaluate", work / "model", dataset_copy, "--out", tmp_path / "t", "--json")
    summary = json.loads(result.stdout)
    assert summary["rows"] == len(df) - 2 and summary["rows_rejected"] == 2
    rejected = pd.read_parquet(tmp_path / "t" / "rejected.parquet").set_index("row")
    assert "not found" in rejected.loc[3, "reason"]
    assert "'zebra' is not one of the classes" in rejected.loc[5, "reason"]
    predictions = pd.read_parquet(tmp_path / "t" / "predictions.parquet")
    assert not predictions["_row"].isin([3, 5]).any()


def test_a_changed_media_file_makes_the_evaluation_stale(work, dataset_copy, tmp_path):
    out = tmp_path / "t"
    run_ok("evaluate", work / "model", dataset_copy, "--out", out)
    assert invoke("status", out).exit_code == 0
    image = dataset_copy.parent / "images" / "004.png"
    Image.new("RGB", (24, 24), (0, 0, 0)).save(image)
    stale = invoke("status", out)
    assert stale.exit_code == EXIT_STALE and "004.png changed" in stale.stdout
    rebuilt = json.loads(
        run_ok("evaluate", work / "model", dataset_copy, "--out", out, "--json").stdout
    )
    assert rebuilt["status"] == "built"


def test_gates_and_refusals_on_a_table(work, dataset, tmp_path):
    gated = invoke("evaluate", work / "model", dataset, "--out", tmp_path / "g",
                   "--fail-under", "log_loss=0")  # fmt: skip
    assert gated.exit_code == EXIT_GATE and "log_loss" in gated.stderr
    assert (tmp_path / "g" / "report.html").is_file()  # the report is kept for the reader
    unlabelled = tmp_path / "new.csv"
    pd.read_csv(dataset).drop(columns=["label"]).to_csv(unlabelled, index=False)
    refused = invoke("evaluate", work / "model", unlabelled, "--out", tmp_path / "u")
    assert refused.exit_code == EXIT_DATA
    assert "no target column 'label'" in refused.stderr and "mmcli predict" in refused.stderr
    elsewhere = tmp_path / "elsewhere.csv"  # paths relative to another folder: none found
    pd.read_csv(dataset).to_csv(elsewhere, index=False)
    lost = invoke("evaluate", work / "model", elsewhere, "--out", tmp_path / "l")
    assert lost.exit_code == EXIT_DATA
    assert "none of its" in lost.stderr and "--data-root" in lost.stderr
    found = run_ok("evaluate", work / "model", elsewhere, "--out", tmp_path / "l",
                   "--data-root", dataset.parent)  # fmt: skip
    assert "rows_rejected: 0" in found.stdout
