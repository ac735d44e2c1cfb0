"""--model auto (candidates chosen on val), --model late (late fusion) and fuse --scale."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST_TRAIN, invoke, run_ok

from mmcli import api
from mmcli.errors import EXIT_USAGE
from mmcli.models import late


def _record(folder):
    return json.loads((folder / "mmcli.json").read_text())


def _val_score(model_folder, fused_folder):
    """macro-F1 of a trained model on its fuse artifact's val rows, computed here."""
    from sklearn.metrics import f1_score

    from mmcli.stages import model_inputs
    from mmcli.stages.train import load_model

    rows = pd.read_parquet(fused_folder / "rows.parquet")
    val = rows[rows["_split"] == "val"]
    model_art = api.load(model_folder)
    inputs = model_inputs.artifact_inputs(
        model_art.record.architecture, api.load(fused_folder), rows
    )
    with torch.no_grad():
        out = load_model(model_art)(*(t[val.index.to_numpy()] for t in inputs))
    return f1_score(val["_target"], out.argmax(1).numpy(), average="macro", zero_division=0)


def test_auto_is_deterministic_and_keeps_the_best_cv_score_on_a_small_val_split(pipeline, tmp_path):
    result = run_ok("train", pipeline / "fused", "--out", tmp_path / "again", *FAST_TRAIN, "--json")
    summary = json.loads(result.stdout)
    first, again = _record(pipeline / "model"), _record(tmp_path / "again")
    assert first["candidates"] == again["candidates"]
    weights = (pipeline / "model/model.safetensors").read_bytes()
    assert weights == (tmp_path / "again/model.safetensors").read_bytes()
    # 14 val rows: too few to choose on, so every candidate is cross-validated.
    names = [c["name"] for c in first["candidates"]]
    assert names == ["logistic", "late", "mlp", "ensemble"]
    assert summary["chosen_on"] == "5-fold cross-validation on train+val"
    chosen = next(c for c in first["candidates"] if c["chosen"])
    assert chosen["cv_score"] == max(c["cv_score"] for c in first["candidates"])
    assert summary["chosen"] == chosen["name"]
    assert summary["candidates"] == {c["name"]: c["cv_score"] for c in first["candidates"]}
    # The recorded val score of the chosen model is what it scores on the val rows now.
    assert _val_score(pipeline / "model", pipeline / "fused") == pytest.approx(
        chosen["val_score"], abs=1e-6
    )
    # The report shows both scores.
    html = (pipeline / "eval/report.html").read_text()
    assert "cv score" in html and "K-fold cross-validation" in html


def test_a_large_val_split_is_chosen_on_directly(pipeline, tmp_path, monkeypatch):
    from mmcli.stages import auto

    monkeypatch.setattr(auto, "FOLDS_BELOW", 1)
    result = run_ok("train", pipeline / "fused", "--out", tmp_path / "m", *FAST_TRAIN, "--json")
    assert json.loads(result.stdout)["chosen_on"] == "val split"
    candidates = _record(tmp_path / "m")["candidates"]
    assert not any("cv_score" in c for c in candidates)
    chosen = next(c for c in candidates if c["chosen"])
    assert chosen["val_score"] == max(c["val_score"] for c in candidates)
    # a later candidate wins only by scoring strictly higher
    first_best = next(c for c in candidates if c["val_score"] == chosen["val_score"])
    assert first_best is chosen


def test_folds_shrink_to_the_smallest_class_and_never_hold_test_rows(pipeline):
    from mmcli.config import TrainConfig
    from mmcli.stages import auto

    data = api.load(pipeline / "fused")
    table = pd.read_parquet(pipeline / "fused/rows.parquet")
    cfg = TrainConfig(data=pipeline / "fused", out=pipeline / "unused")
    split = table["_split"].to_numpy()
    rows = np.flatnonzero(split != "test")
    target = table["_target"].to_numpy().copy()
    target[rows] = np.where(target[rows] == 2, 0, target[rows])
    target[rows[:3]] = 2  # class 2: three train+val rows
    folds = auto._folds(cfg, data, table.assign(_target=target))
    assert len(folds) == 3
    held = np.concatenate([f.val_idx for f in folds])
    assert sorted(held) == list(rows)  # every train+val row held out once, no test row
    for fold in folds:
        assert set(target[fold.train_idx]) == {0, 1, 2}
        assert (fold.table["_split"].to_numpy()[fold.val_idx] == "val").all()
    target[rows[1:3]] = 0  # class 2: one row, which no fold could train on
    assert auto._folds(cfg, data, table.assign(_target=target)) == []


def test_ensemble_averages_its_members_probabilities():
    from mmcli.models import heads
    from mmcli.models.ensemble import EnsembleNet

    head = {"family": "head", "model": "mlp", "in_dim": 7, "out_dim": 3, "hidden": 4,
            "dropout": 0.0}  # fmt: skip
    columns = [{"name": "a", "dim": 3, "start": 0, "stop": 3},
               {"name": "b", "dim": 2, "start": 3, "stop": 5}]  # fmt: skip
    late_arch = {"family": "late", "columns": columns, "out_dim": 3, "task": "classification"}
    architecture = {"family": "ensemble", "task": "classification", "out_dim": 3,
                    "mask": [5, 7], "members": [head, late_arch]}  # fmt: skip
    torch.manual_seed(0)
    net = EnsembleNet(architecture).eval()
    one, two = net.members
    assert isinstance(one, heads.Head) and isinstance(two, late.LateFusionNet)
    x = torch.randn(6, 7)
    x[:, 5:] = torch.tensor([[1.0, 0.0]] * 3 + [[1.0, 1.0]] * 3)
    with torch.no_grad():
        expected = (
            torch.softmax(one(x), 1) + torch.softmax(two(x[:, 0:3], x[:, 3:5], x[:, 5:7]), 1)
        ) / 2
        out = net(x)
    assert torch.allclose(out.exp(), expected, atol=1e-6)
    assert torch.allclose(out.exp().sum(1), torch.ones(6))
    # The late member reads the presence flags from the matrix: an absent column's block
    # changes nothing in its part.
    changed = x.clone()
    changed[:3, 3:5] = 100.0
    with torch.no_grad():
        moved = net(changed).exp() * 2 - torch.softmax(one(changed), 1)
        assert torch.allclose(
            moved[:3], torch.softmax(two(x[:, 0:3], x[:, 3:5], x[:, 5:7]), 1)[:3], atol=1e-6
        )
    # Regression: the plain mean of the members' predictions.
    head_r = {**head, "out_dim": 1}
    late_r = {**late_arch, "out_dim": 1, "task": "regression"}
    net_r = EnsembleNet(
        {**architecture, "task": "regression", "out_dim": 1, "members": [head_r, late_r]}
    )
    with torch.no_grad():
        a, b = net_r.members
        assert torch.allclose(net_r(x), (a(x) + b(x[:, :3], x[:, 3:5], x[:, 5:7])) / 2)


def test_a_chosen_ensemble_predicts_evaluates_and_masks_like_any_model(
    pipeline, tmp_path, dataset, monkeypatch
):
    from mmcli.models.ensemble import EnsembleNet
    from mmcli.stages import auto

    real = auto._score_function

    def prefer_the_ensemble(task):  # the plumbing under test, not the choice
        score = real(task)
        return lambda model, *a: score(model, *a) + (10.0 if isinstance(model, EnsembleNet) else 0)

    monkeypatch.setattr(auto, "_score_function", prefer_the_ensemble)
    monkeypatch.setattr(auto, "FOLDS_BELOW", 1)
    run_ok("train", pipeline / "fused", "--out", tmp_path / "m", *FAST_TRAIN)
    monkeypatch.undo()
    record = _record(tmp_path / "m")
    assert record["architecture"]["family"] == "ensemble"
    assert [m["family"] for m in record["architecture"]["members"]] == ["head", "late", "head"]
    ensemble = next(c for c in record["candidates"] if c["name"] == "ensemble")
    assert ensemble["params"] == {"members": ["logistic", "late", "mlp"]}
    assert _val_score(tmp_path / "m", pipeline / "fused") == pytest.approx(
        ensemble["val_score"] - 10.0, abs=1e-6
    )
    run_ok("evaluate", tmp_path / "m", pipeline / "fused", "--out", tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert metrics["macro_f1"] >= 0.8
    assert set(metrics["contributions"]["columns"]) == {
        "image",
        "audio",
        "caption",
        "weight",
        "colour",
    }
    rows = pd.read_csv(dataset).drop(columns=["label"]).head(5)
    predictions = api.predict(tmp_path / "m", rows, data_root=dataset.parent)
    assert predictions["error"].isna().all()
    assert set(predictions["prediction"]) <= {"cat", "dog", "owl"}


def test_a_different_seed_can_change_the_bytes_but_not_the_rules(pipeline, tmp_path):
    run_ok("train", pipeline / "fused", "--out", tmp_path / "s1", "--seed", "1", *FAST_TRAIN)
    record = _record(tmp_path / "s1")
    assert sum(c["chosen"] for c in record["candidates"]) == 1
    assert record["params"]["seed"] == 1


def test_late_fusion_predicts_and_reports_its_weights(pipeline, tmp_path, dataset):
    result = run_ok("train", pipeline / "fused", "--out", tmp_path / "late", "--model", "late")
    assert "fusion_weights" in result.stdout
    record = _record(tmp_path / "late")
    assert record["architecture"]["family"] == "late"
    names = [c["name"] for c in record["architecture"]["columns"]]
    params = record["candidates"][0]["params"]
    assert {f"{n}.weight" for n in names} <= set(params)
    run_ok("evaluate", tmp_path / "late", pipeline / "fused", "--out", tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert metrics["macro_f1"] >= 0.8
    # Leave-one-column-out runs through the mask, as for learned fusion.
    assert set(metrics["contributions"]["columns"]) == set(names)
    rows = pd.read_csv(dataset).drop(columns=["label"]).head(5)
    predictions = api.predict(tmp_path / "late", rows, data_root=dataset.parent)
    assert predictions["error"].isna().all()
    assert set(predictions["prediction"]) <= {"cat", "dog", "owl"}


def test_late_refuses_a_fusion_and_a_weighted_sum_artifact(pipeline, tmp_path):
    result = invoke(
        "train", pipeline / "fused", "--out", tmp_path / "m", "--model", "late", "--fusion", "gated"
    )
    assert result.exit_code == EXIT_USAGE and "its own fusion" in result.stderr
    run_ok("fuse", pipeline / "feats", "--out", tmp_path / "ws", "--method", "weighted-sum")
    result = invoke("train", tmp_path / "ws", "--out", tmp_path / "m", "--model", "late")
    assert result.exit_code == EXIT_USAGE and "--method concat" in result.stderr
    # auto on a weighted-sum artifact tries the others
    run_ok("train", tmp_path / "ws", "--out", tmp_path / "auto", *FAST_TRAIN)
    names = [c["name"] for c in _record(tmp_path / "auto")["candidates"]]
    assert names == ["logistic", "mlp", "ensemble"]


def test_late_net_ignores_an_absent_column():
    architecture = {
        "family": "late",
        "columns": [{"name": "a", "dim": 3}, {"name": "b", "dim": 2}],
        "out_dim": 4,
        "task": "classification",
    }
    torch.manual_seed(0)
    net = late.LateFusionNet(architecture)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([0.7, 1.3]))
    a, b = torch.randn(5, 3), torch.randn(5, 2)
    mask = torch.tensor([[1.0, 0.0]] * 5)
    out = net(a, b, mask)
    assert torch.allclose(out, net(a, torch.randn(5, 2) * 100, mask))
    expected = net.bias + 0.7 * torch.log_softmax(net.columns[0](a), dim=1)
    assert torch.allclose(out, expected)


def _independent_evidence(rng, n, k, show):
    """Rows whose columns each show the true class with probability show[c] (else a
    random one), one-hot, with the Bayes posterior's decisions."""
    y = rng.integers(0, k, n)
    blocks, logpost = [], np.zeros((n, k))
    for p in show:
        shown = np.where(rng.random(n) < p, y, rng.integers(0, k, n))
        blocks.append(np.eye(k)[shown] + rng.normal(0, 0.05, (n, k)))
        like = np.full((n, k), (1 - p) / k)
        like[np.arange(n), shown] += p
        logpost += np.log(like)
    return y, blocks, logpost.argmax(axis=1)


def test_late_fit_reaches_the_bayes_rule_on_independent_evidence():
    rng = np.random.default_rng(0)
    y, blocks, bayes = _independent_evidence(rng, 3000, 4, [0.6, 0.5, 0.4])
    train, val, test = np.arange(0, 2000), np.arange(2000, 2400), np.arange(2400, 3000)
    fit = late.fit(
        blocks, np.ones((3000, 3)), y, train, val, ["a", "b", "c"], "classification", 4, 0
    )
    net = late.LateFusionNet(
        {
            "columns": [{"dim": 4}] * 3,
            "out_dim": 4,
            "task": "classification",
        }
    )
    net.load_state_dict(fit.state)
    with torch.no_grad():
        out = net(*(torch.tensor(b[test], dtype=torch.float32) for b in blocks), torch.ones(600, 3))
    agreement = (out.argmax(1).numpy() == bayes[test]).mean()
    assert agreement > 0.95, agreement
    accuracy, bayes_accuracy = (out.argmax(1).numpy() == y[test]).mean(), (bayes == y)[test].mean()
    assert accuracy >= bayes_accuracy - 0.02
    # Again, with the same seed: the same state, bit for bit.
    again = late.fit(
        blocks, np.ones((3000, 3)), y, train, val, ["a", "b", "c"], "classification", 4, 0
    )
    assert all(torch.equal(fit.state[k], again.state[k]) for k in fit.state)


def test_late_fit_regression_sums_the_columns_evidence():
    rng = np.random.default_rng(1)
    n = 1500
    a, b = rng.normal(size=(n, 2)), rng.normal(size=(n, 3))
    y = a @ [1.0, -2.0] + b @ [0.5, 0.0, 1.5] + rng.normal(0, 0.1, n)
    train, val = np.arange(1000), np.arange(1000, 1200)
    fit = late.fit([a, b], np.ones((n, 2)), y, train, val, ["a", "b"], "regression", 1, 0)
    net = late.LateFusionNet({"columns": [{"dim": 2}, {"dim": 3}], "out_dim": 1, "task": "r"})
    net.load_state_dict(fit.state)
    with torch.no_grad():
        out = net(
            torch.tensor(a[1200:]).float(), torch.tensor(b[1200:]).float(), torch.ones(300, 2)
        )
    residual = out[:, 0].numpy() - y[1200:]
    assert np.sqrt((residual**2).mean()) < 0.2


def test_fuse_scale_block_weighs_every_block_alike(pipeline, tmp_path):
    x = np.load(pipeline / "fused/X.npy")
    rows = pd.read_parquet(pipeline / "fused/rows.parquet")
    blocks = _record(pipeline / "fused")["blocks"]
    train = (rows["_split"] == "train").to_numpy()
    for b in blocks:
        if b["name"] == "_present":
            continue
        present = rows[f"_present.{b['name']}"].to_numpy(dtype=bool) & train
        norm = (x[present, b["start"] : b["stop"]] ** 2).sum(axis=1).mean()
        assert norm == pytest.approx(1.0, rel=0.05), b["name"]
    # The text block is scaled as a whole: one divisor for all its terms, so each keeps
    # its TF-IDF weight relative to the others; --scale feature divides each term by its
    # own spread.
    from safetensors.numpy import load_file

    std = load_file(str(pipeline / "fused/fusion.safetensors"))["caption.std"]
    assert np.unique(std).size == 1
    dense = load_file(str(pipeline / "fused/fusion.safetensors"))["image.std"]
    assert np.unique(dense).size > 1
    run_ok("fuse", pipeline / "feats", "--out", tmp_path / "f", "--scale", "feature")
    per_feature = load_file(str(tmp_path / "f/fusion.safetensors"))["caption.std"]
    assert np.unique(per_feature).size > 1
    xf = np.load(tmp_path / "f/X.npy")
    text = next(b for b in blocks if b["name"] == "caption")
    spread = xf[train, text["start"] : text["stop"]].std(axis=0)
    assert np.allclose(spread[spread > 1e-3], 1.0, atol=0.05)


@pytest.mark.parametrize("labels", [[0] * 20 + [1] * 20 + [2], [0, 1, 2], [0, 1, 1, 0, 2, 2]])
def test_late_fit_copes_with_classes_of_one_train_row(labels):
    y = np.array(labels)
    x = np.random.default_rng(0).normal(size=(len(y), 3))
    train, no_val = np.arange(len(y)), np.array([], dtype=int)
    fit = late.fit([x], np.ones((len(y), 1)), y, train, no_val, ["a"], "classification", 3, 0)
    assert all(torch.isfinite(v).all() for v in fit.state.values())
    assert fit.chosen == {"a": late.C_PATH[len(late.C_PATH) // 2]}  # no val: the middle C
