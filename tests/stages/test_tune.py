"""mmcli tune: Optuna trials on val (or K folds), deterministic, and a best config that
train accepts."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from conftest import invoke, run_ok

from mmcli.errors import EXIT_USAGE
from mmcli.stages import tune

FAST = "epochs: 30\npatience: 8\n"


@pytest.fixture()
def base(tmp_path):
    path = tmp_path / "fast.yaml"
    path.write_text(FAST)
    return path


def _trials(folder):
    with open(folder / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def _summary(result):
    return json.loads(result.stdout)


def test_tune_is_deterministic_and_its_best_config_trains_the_best_trial(pipeline, tmp_path, base):
    args = ["tune", pipeline / "fused", "--trials", "4", "--base", base, "--json"]
    first = _summary(run_ok(*args, "--out", tmp_path / "a"))
    run_ok(*args, "--out", tmp_path / "b")
    for name in ("trials.csv", "best.yaml", "mmcli.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    trials = _trials(tmp_path / "a")
    assert len(trials) == 4 and first["trials"] == 4
    # Trials differ (the sampler explores), and the best is the highest complete score.
    assert len({t["lr"] for t in trials}) == 4
    complete = [t for t in trials if t["state"] == "complete"]
    best = max(complete, key=lambda t: float(t["score"]))
    assert first["best_trial"] == int(best["trial"])
    assert first["best_score"] == pytest.approx(float(best["score"]), abs=1e-6)
    config = yaml.safe_load((tmp_path / "a/best.yaml").read_text())
    assert config["model"] == "mlp" and config["epochs"] == 30  # --base values kept
    assert config["hidden"] == int(best["hidden"]) and config["lr"] == float(best["lr"])
    # Trained again from best.yaml, the model scores on val what its trial scored.
    model = _summary(
        run_ok(
            "train", pipeline / "fused", "--config", tmp_path / "a/best.yaml",
            "--out", tmp_path / "model", "--json",
        )
    )  # fmt: skip
    assert model["val_score"] == pytest.approx(first["best_score"], abs=1e-6)
    # Unchanged inputs: up to date, nothing rerun.
    again = _summary(run_ok(*args, "--out", tmp_path / "a"))
    assert again["status"] == "up-to-date" and again["best_score"] == first["best_score"]


def test_another_seed_samples_other_trials(pipeline, tmp_path, base):
    args = ["tune", pipeline / "fused", "--trials", "2", "--base", base, "--params", "lr"]
    run_ok(*args, "--out", tmp_path / "s0")
    run_ok(*args, "--seed", "1", "--out", tmp_path / "s1")
    lrs = [[t["lr"] for t in _trials(tmp_path / s)] for s in ("s0", "s1")]
    assert lrs[0] != lrs[1]
    # --params keeps the others at their defaults: only lr is in the table.
    assert list(_trials(tmp_path / "s0")[0]) == ["trial", "state", "score", "epochs", "lr"]


def test_pruning_stops_trials_below_the_median(pipeline, tmp_path, base, monkeypatch):
    monkeypatch.setattr(tune, "PRUNE_AFTER", 1)
    monkeypatch.setattr(tune, "PRUNE_WARMUP_EPOCHS", 1)
    args = ["tune", pipeline / "fused", "--trials", "6", "--base", base]
    summary = _summary(run_ok(*args, "--out", tmp_path / "t", "--json"))
    trials = _trials(tmp_path / "t")
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert pruned and summary["pruned"] == len(pruned)
    assert all(int(t["epochs"]) < 30 for t in pruned)
    assert summary["best_trial"] in [int(t["trial"]) for t in trials if t["state"] == "complete"]
    run_ok(*args, "--prune", "none", "--out", tmp_path / "n")
    assert {t["state"] for t in _trials(tmp_path / "n")} == {"complete"}


@pytest.fixture(scope="module")
def no_val(dataset, tmp_path_factory):
    """A fuse artifact whose split has no val rows."""
    work = tmp_path_factory.mktemp("noval")
    run_ok("preprocess", dataset, "--out", work / "prep", "--val-fraction", "0")
    run_ok("extract-features", work / "prep", "--out", work / "feats")
    run_ok("fuse", work / "feats", "--out", work / "fused")
    return work / "fused"


def test_folds_score_trials_without_a_val_split(no_val, tmp_path, base):
    result = invoke("tune", no_val, "--trials", "2", "--out", tmp_path / "t")
    assert result.exit_code == EXIT_USAGE
    assert "no val rows" in result.stderr and "--folds K" in result.stderr
    args = ["tune", no_val, "--trials", "2", "--base", base, "--folds", "3", "--json"]
    summary = _summary(run_ok(*args, "--out", tmp_path / "t"))
    assert summary["scored_on"] == "3-fold cross-validation"
    trials = _trials(tmp_path / "t")
    assert len(trials) == 2 and all(t["state"] == "complete" for t in trials)
    # Each trial trains once per fold: its epochs add up over the three.
    assert all(int(t["epochs"]) > 3 for t in trials)
    result = invoke("tune", no_val, "--folds", "500", "--out", tmp_path / "u")
    assert result.exit_code == EXIT_USAGE and "a class has only" in result.stderr


def test_timeout_ends_the_search_and_says_so(pipeline, tmp_path, base):
    args = ["tune", pipeline / "fused", "--trials", "50", "--timeout", "0.01", "--base", base]
    summary = _summary(run_ok(*args, "--out", tmp_path / "t", "--json"))
    assert summary["trials"] == 1 and "--timeout" in summary["stopped"]


def test_tune_e2e_searches_the_fusion_too(pipeline, tmp_path, tmp_path_factory):
    base = tmp_path / "tiny.yaml"
    base.write_text("epochs: 2\nconv_channels: [4]\nrnn_hidden: 8\nembed_dim: 8\n")
    run_ok("tune", pipeline / "prep", "--trials", "1", "--base", base, "--out", tmp_path / "t")
    config = yaml.safe_load((tmp_path / "t/best.yaml").read_text())
    assert config["model"] == "e2e" and config["fusion"] in tune.SPACES["e2e"]["fusion"].choices
    assert config["conv_channels"] == [4]
    run_ok(
        "train", pipeline / "prep", "--config", tmp_path / "t/best.yaml", "--out", tmp_path / "m"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--params", "hiden"], "did you mean 'hidden'"),
        (["--model", "e2e"], "runs on a preprocess artifact"),
        (["--folds", "1"], "folds 1"),
        (["--trials", "0"], "trials"),
    ],
)
def test_bad_options_are_usage_errors(pipeline, tmp_path, args, message):
    result = invoke("tune", pipeline / "fused", *args, "--out", tmp_path / "t")
    assert result.exit_code == EXIT_USAGE and message in result.stderr
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    ("text", "message"), [("epohcs: 3\n", "did you mean 'epochs'"), ("out: x\n", "own argument")]
)
def test_a_bad_base_file_is_refused_before_any_trial(pipeline, tmp_path, text, message):
    base = tmp_path / "base.yaml"
    base.write_text(text)
    result = invoke("tune", pipeline / "fused", "--base", base, "--out", tmp_path / "t")
    assert result.exit_code == EXIT_USAGE and message in result.stderr


def test_a_fusion_named_is_used_by_every_trial_and_kept(pipeline, tmp_path, base):
    args = ["tune", pipeline / "fused", "--fusion", "weighted-sum", "--trials", "1"]
    summary = _summary(run_ok(*args, "--base", base, "--out", tmp_path / "t", "--json"))
    config = yaml.safe_load((tmp_path / "t/best.yaml").read_text())
    assert config["fusion"] == "weighted-sum"
    model = _summary(
        run_ok("train", pipeline / "fused", "--config", tmp_path / "t/best.yaml",
               "--out", tmp_path / "m", "--json")
    )  # fmt: skip
    assert model["fusion"] == "weighted-sum"
    assert model["val_score"] == pytest.approx(summary["best_score"], abs=1e-6)
