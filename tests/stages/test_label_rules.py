"""What preprocess decides about the target and the columns, and what it tells the user:
impossible splits refused before any file is decoded, the task rule said, file columns
known by their content."""

from __future__ import annotations

import json

import pandas as pd
from conftest import invoke, run_ok

from mmcli.errors import EXIT_DATA


def _manifest(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_number_target_as_classes_is_refused_before_decoding(dataset_copy, tmp_path):
    # Every 'weight' value is different: as classes, no class has rows for val or test.
    # The images are gone, so a refusal after decoding would talk about missing files.
    for image in (dataset_copy.parent / "images").iterdir():
        image.unlink()
    result = invoke(
        "preprocess", dataset_copy, "--out", tmp_path / "prep",
        "--target", "weight", "--task", "classification",
    )  # fmt: skip
    assert result.exit_code == EXIT_DATA, result.output
    assert "the split leaves no rows for val and test" in result.stderr
    assert "--task regression" in result.stderr
    assert "not found" not in result.stderr
    assert not (tmp_path / "prep").exists()
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        f"manifest: {dataset_copy}\nout: {tmp_path / 'work'}\n"
        "preprocess:\n  target: weight\n  task: classification\n"
    )
    dry_run = invoke("run", pipeline, "--dry-run")
    assert dry_run.exit_code == EXIT_DATA, dry_run.output
    assert "no rows for val and test" in dry_run.stderr


def test_a_label_that_is_nearly_unique_is_questioned(dataset_copy, tmp_path):
    df = _manifest(dataset_copy)
    df["code"] = [f"c{i}" for i in range(len(df))]
    df.to_csv(dataset_copy, index=False)
    result = invoke("preprocess", dataset_copy, "--out", tmp_path / "p", "--target", "code")
    assert result.exit_code == EXIT_DATA
    assert "is it the label?" in result.stderr and "'label'" in result.stderr


def test_the_id_column_is_no_target(dataset, tmp_path):
    result = invoke("preprocess", dataset, "--out", tmp_path / "p", "--target", "id")
    assert result.exit_code == EXIT_DATA
    assert "the target 'id' is the id column" in result.stderr
    assert not (tmp_path / "p").exists()


def test_no_val_fraction_is_allowed_and_train_says_there_is_no_early_stopping(dataset, tmp_path):
    run_ok("preprocess", dataset, "--out", tmp_path / "prep", "--val-fraction", "0")
    run_ok("extract-features", tmp_path / "prep", "--out", tmp_path / "feats")
    run_ok("fuse", tmp_path / "feats", "--out", tmp_path / "fused")
    result = run_ok(
        "train", tmp_path / "fused", "--out", tmp_path / "m", "--epochs", "5", "--model", "mlp",
        "--json",
    )  # fmt: skip
    summary = json.loads(result.stdout)
    assert summary["early_stopping"].startswith("off: no val rows")
    assert summary["epochs"] == summary["best_epoch"] == 5
    assert "val_score" not in summary
    # --model auto chooses by cross-validation on the train rows, and says so
    result = run_ok("train", tmp_path / "fused", "--out", tmp_path / "a", "--epochs", "5", "--json")
    summary = json.loads(result.stdout)
    assert summary["chosen_on"] == "5-fold cross-validation on train+val"
    assert "val_score" not in summary
    record = json.loads((tmp_path / "a/mmcli.json").read_text())
    assert {c["val_score"] for c in record["candidates"]} == {None}
    best = max(c["cv_score"] for c in record["candidates"])  # the first best: the simplest
    assert (
        summary["chosen"] == next(c for c in record["candidates"] if c["cv_score"] == best)["name"]
    )


def test_a_split_column_without_val_rows_is_a_warning(dataset_copy, tmp_path):
    df = _manifest(dataset_copy)
    df["split"] = ["test" if i % 4 == 0 else "train" for i in range(len(df))]
    df.to_csv(dataset_copy, index=False)
    result = run_ok("preprocess", dataset_copy, "--out", tmp_path / "p", "--json")
    summary = json.loads(result.stdout)
    assert summary["rows"]["val"] == 0 and summary["rows"]["test"] > 0
    assert any("gives no val rows" in w and "no early stopping" in w for w in summary["warnings"])
    again = json.loads(run_ok("preprocess", dataset_copy, "--out", tmp_path / "p", "--json").stdout)
    assert again["status"] == "up-to-date" and again["warnings"] == summary["warnings"]


def test_many_integer_labels_become_a_number_and_the_rule_is_said(dataset_copy, tmp_path):
    df = _manifest(dataset_copy)
    df["score"] = [str(i % 30) for i in range(len(df))]  # 30 integer values
    df.to_csv(dataset_copy, index=False)
    result = run_ok("preprocess", dataset_copy, "--out", tmp_path / "p", "--target", "score")
    assert "regression" in result.stdout
    assert "30 distinct integer values" in result.stdout
    assert "--task classification" in result.stdout
    summary = json.loads(
        run_ok(
            "preprocess", dataset_copy, "--out", tmp_path / "p", "--target", "score", "--json"
        ).stdout
    )
    assert summary["task"] == "regression" and "30 distinct integer" in summary["task_rule"]
    assert any("predicted as a number" in w for w in summary["warnings"])
    # Few integer values stay classes, and the rule says how to change it.
    df["score"] = [str(i % 3) for i in range(len(df))]
    df.to_csv(dataset_copy, index=False)
    few = json.loads(
        run_ok(
            "preprocess", dataset_copy, "--out", tmp_path / "q", "--target", "score", "--json"
        ).stdout
    )
    assert few["task"] == "classification" and "--task regression" in few["task_rule"]
    assert not few.get("warnings")


def test_image_paths_without_extensions_are_known_by_content(dataset_copy, tmp_path):
    root = dataset_copy.parent
    df = _manifest(dataset_copy)
    for i, cell in enumerate(df["image"]):
        (root / cell).rename(root / f"images/{i:03d}")
        df.loc[i, "image"] = f"images/{i:03d}"
    df.to_csv(dataset_copy, index=False)
    result = run_ok("preprocess", dataset_copy, "--out", tmp_path / "p", "--json")
    summary = json.loads(result.stdout)
    assert summary["columns"]["image"] == "image"
    assert summary["rows"]["kept"] == len(df)
    assert any(
        "'image' holds image files, known by their content" in w for w in summary["warnings"]
    )
    ignored = json.loads(
        run_ok(
            "preprocess", dataset_copy, "--out", tmp_path / "q", "--input", "image:ignore", "--json"
        ).stdout
    )
    assert ignored["columns"]["image"] == "ignore" and not ignored.get("warnings")


def test_path_like_cells_that_name_no_media_warn(dataset_copy, tmp_path):
    df = _manifest(dataset_copy)
    df["scan"] = [f"scans/{i:03d}" for i in range(len(df))]  # no such files
    df.to_csv(dataset_copy, index=False)
    result = run_ok("preprocess", dataset_copy, "--out", tmp_path / "p")
    assert "column 'scan' looks like file paths without an extension" in result.stdout
    assert "--input scan:image" in result.stdout


def test_too_few_rows_for_a_val_share_is_a_warning(dataset, tmp_path):
    # 30 rows a class: a 1% share rounds to no row. The label is plausible: a warning.
    result = run_ok(
        "preprocess", dataset, "--out", tmp_path / "p", "--val-fraction", "0.01", "--json"
    )
    summary = json.loads(result.stdout)
    assert summary["rows"]["val"] == 0 and summary["rows"]["test"] > 0
    (warning,) = summary["warnings"]
    assert "no rows for val (3 classes in 90 rows" in warning
    assert "no early stopping" in warning and "--val-fraction 0" in warning
