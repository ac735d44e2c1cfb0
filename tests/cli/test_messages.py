"""Messages a user reads after a typo: plain words (never the validation library's), the
nearest valid name, and gates checked before any work."""

from __future__ import annotations

import numpy as np
from conftest import invoke

from mmcli import metrics
from mmcli.errors import EXIT_MISSING, EXIT_USAGE

LIBRARY_WORDING = ("Field required", "Extra inputs", "Input should", "unable to parse")


def _plain(text: str) -> bool:
    return not any(words in text for words in LIBRARY_WORDING)


def test_a_mistyped_config_key_names_the_nearest(dataset, tmp_path):
    config = tmp_path / "prep.yaml"
    config.write_text("image-sise: 32\nval_fraction: 0.2\n")
    result = invoke("preprocess", dataset, "--out", tmp_path / "p", "--config", config)
    assert result.exit_code == EXIT_USAGE
    assert "image-sise: unknown key; did you mean 'image-size'?" in result.stderr
    assert _plain(result.stderr)


def test_a_value_of_the_wrong_type_is_said_plainly(dataset, tmp_path):
    for flag, value, words in (
        ("--val-fraction", "abc", 'val-fraction: should be a valid number (got "abc")'),
        ("--image-size", "1.5", 'image-size: should be a valid integer (got "1.5")'),
        ("--on-error", "nope", "on-error: should be 'skip', 'fail' or 'keep'"),
    ):
        result = invoke("preprocess", dataset, "--out", tmp_path / "p", flag, value)
        assert result.exit_code == EXIT_USAGE
        assert words in result.stderr and _plain(result.stderr), result.stderr


def test_pipeline_typos_name_the_nearest(dataset, tmp_path):
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(f"manifest: {dataset}\ntrian: {{epochs: 5}}\n")
    result = invoke("run", pipeline, "--dry-run")
    assert result.exit_code == EXIT_USAGE
    assert "unknown key 'trian'; did you mean 'train'?" in result.stderr
    pipeline.write_text(f"manifest: {dataset}\ntrain: {{epoch: 5}}\n")
    result = invoke("run", pipeline, "--dry-run")
    assert result.exit_code == EXIT_USAGE
    assert "train: invalid parameters: epoch: unknown key; did you mean 'epochs'?" in result.stderr


def test_a_gate_typo_is_refused_before_any_work(work, tmp_path):
    out = tmp_path / "new-eval"
    result = invoke("evaluate", work / "model", work / "fused", "--out", out,
                    "--fail-under", "macro_f=0.5")  # fmt: skip
    assert result.exit_code == EXIT_USAGE
    assert "no metric 'macro_f'; did you mean 'macro_f1'?" in result.stderr
    assert not out.exists()
    wrong_task = invoke("evaluate", work / "model", work / "fused", "--out", out,
                        "--fail-under", "rmse=1")  # fmt: skip
    assert wrong_task.exit_code == EXIT_USAGE
    assert "'rmse' is a regression metric, and this model's task is classification" in (
        wrong_task.stderr
    )
    assert not out.exists()


def test_a_gate_typo_in_a_pipeline_fails_its_dry_run(dataset, tmp_path):
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(f"manifest: {dataset}\nevaluate: {{fail-under: [acuracy=0.5]}}\n")
    result = invoke("run", pipeline, "--dry-run")
    assert result.exit_code == EXIT_USAGE
    assert "no metric 'acuracy'; did you mean 'accuracy'?" in result.stderr
    assert not (tmp_path / "work").exists()


def test_gate_names_are_the_metrics_evaluate_computes():
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    proba = rng.dirichlet(np.ones(3), size=30)
    scored = {
        "classification": metrics.classification_metrics(y, proba, ["a", "b", "c"]),
        "regression": metrics.regression_metrics(rng.normal(size=30), rng.normal(size=30)),
    }
    for task, values in scored.items():
        numbers = {
            k
            for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n"
        }
        assert numbers == set(metrics.GATE_METRICS[task])


def test_a_wrong_artifact_says_the_next_command(work):
    early = invoke("train", work / "feats", "--out", work / "m2")
    assert early.exit_code == EXIT_MISSING
    assert f"run `mmcli fuse {work / 'feats'} --out DIR` first" in early.stderr
    swapped = invoke("evaluate", work / "fused", work / "model", "--out", work / "e2")
    assert swapped.exit_code == EXIT_MISSING
    assert "did you swap MODEL and DATA?" in swapped.stderr
    assert f"`mmcli evaluate {work / 'model'} {work / 'fused'}`" in swapped.stderr
