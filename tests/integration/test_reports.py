"""What people read and pipelines run: report figures and HTML, compare, mmcli run."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import FAST_TRAIN, invoke, run_ok
from PIL import Image

from mmcli.errors import EXIT_GATE, EXIT_USAGE

FIGURES = (
    "confusion_matrix.png",
    "reliability.png",
    "roc_curves.png",
    "pr_curves.png",
    "contributions.png",
)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables, self.headings, self._in_h = [], 0, [], False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self.tables += tag == "table"
        self._in_h = tag in ("h1", "h2")

    def handle_data(self, data):
        if self._in_h:
            self.headings.append(data)
            self._in_h = False


def test_evaluation_figures_numbers_and_html(pipeline):
    evaluation = pipeline / "eval"
    for name in FIGURES:
        with Image.open(evaluation / name) as img:
            assert img.size == (600, 500)
            assert np.asarray(img.convert("L")).std() > 5  # not blank
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert 0 <= metrics["calibration"]["ece"] <= 1
    assert sum(b["count"] for b in metrics["calibration"]["bins"]) == metrics["n"]
    contributions = metrics["contributions"]
    assert set(contributions["columns"]) == {"image", "audio", "caption", "weight", "colour"}
    assert contributions["full"] == metrics["macro_f1"]
    # the generated classes live in image colour, tone pitch and words: masking helps nobody
    assert max(c["drop"] for c in contributions["columns"].values()) >= 0
    worst = metrics["worst"]
    assert len(worst) == min(10, metrics["n"])
    assert worst[0]["error"] >= worst[-1]["error"]
    assert worst[0]["inputs"]["image"].startswith("images/")
    assert set(metrics["per_class_curves"]) == {"cat", "dog", "owl"}
    page = _Collect()
    page.feed((evaluation / "report.html").read_text())
    thumbnails = [w for w in worst if "image" in w.get("media", {})]
    curve = int((evaluation / "curve.png").exists())  # a model trained by epochs has one
    assert curve == (pipeline / "model/curve.png").exists()
    assert len(page.images) == len(FIGURES) + curve + len(thumbnails)
    assert all(src.startswith("data:image/png;base64,") for src in page.images)  # self-contained
    assert page.tables >= 4 and any("contributions" in h for h in page.headings)
    markdown = (evaluation / "report.md").read_text()
    assert "![Modality contributions](contributions.png)" in markdown
    assert "report.html" in markdown


def test_report_shows_provenance_gates_curve_and_the_worst_rows_media(pipeline, tmp_path):
    out = tmp_path / "eval"
    result = invoke("evaluate", pipeline / "model", pipeline / "fused", "--out", out,
                    "--fail-under", "accuracy=0.2,log_loss=0")  # fmt: skip
    assert result.exit_code == EXIT_GATE  # the report is written either way
    metrics = json.loads((out / "metrics.json").read_text())
    provenance = metrics["provenance"]
    model = json.loads((pipeline / "model" / "mmcli.json").read_text())
    assert provenance["model"]["fingerprint"] == model["fingerprint"]
    assert provenance["model"]["params"] == model["params"]
    fused = json.loads((pipeline / "fused" / "mmcli.json").read_text())
    assert provenance["data"]["fingerprint"] == fused["fingerprint"]
    assert metrics["gates"]["results"]["accuracy=0.2"] == "passed"
    assert metrics["gates"]["results"]["log_loss=0"].startswith("log_loss = ")
    assert metrics["gates"]["passed"] is False
    headline = json.loads((out / "summary.json").read_text())  # for dvc metrics: flat, small
    assert headline["rows"] == metrics["n"] and headline["macro_f1"] == metrics["macro_f1"]
    assert all(isinstance(v, (int, float)) or v is None for v in headline.values())
    html = (out / "report.html").read_text()
    assert "Quality gates: FAILED" in html and "Provenance" in html
    assert (
        model["fingerprint"][:12] in html
        and f"<td>{metrics['provenance']['mmcli_version']}" in html
    )
    # Every worst row shows its image (the decoded 24 px thumbnail) and plays its sound.
    worst = metrics["worst"]
    assert all(set(w["media"]) == {"image", "audio"} for w in worst)
    for w in worst:
        with Image.open(out / w["media"]["image"]) as thumbnail:
            assert thumbnail.size == (24, 24)
        assert (out / w["media"]["audio"]).read_bytes()[:4] == b"RIFF"
    assert html.count('<audio controls src="data:audio/wav;base64,') == len(worst)
    markdown = (out / "report.md").read_text()
    for w in worst:  # report.md links files that are in the artifact, relative to it
        assert f"]({w['media']['image']})" in markdown and f"]({w['media']['audio']})" in markdown
    # --model auto: the candidates and their val scores; the training curve when the chosen
    # model trained by epochs
    assert provenance["model"]["candidates"] == model["candidates"]
    assert "Model selection (--model auto)" in html and "(chosen)" in markdown
    if (pipeline / "model/curve.png").exists():
        assert (out / "curve.png").read_bytes() == (pipeline / "model/curve.png").read_bytes()
        assert "![Training curve" in markdown
    else:
        assert not (out / "curve.png").exists() and "![Training curve" not in markdown
    # The same evaluation twice gives the same bytes, media included.
    again = tmp_path / "again"
    invoke("evaluate", pipeline / "model", pipeline / "fused", "--out", again,
           "--fail-under", "accuracy=0.2,log_loss=0")  # fmt: skip
    for name in ["metrics.json", "report.html", *(w["media"]["image"] for w in worst)]:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_contributions_of_an_e2e_model_follow_the_mask(dataset, tmp_path):
    run_ok(
        "preprocess",
        dataset,
        "--out",
        tmp_path / "prep",
        "--image-size",
        "16",
        "--sample-rate",
        "8000",
        "--audio-seconds",
        "0.5",
        "--input",
        "weight:ignore",
        "--input",
        "colour:ignore",
        "--input",
        "caption:ignore",
    )
    run_ok(
        "train",
        tmp_path / "prep",
        "--out",
        tmp_path / "model",
        "--epochs",
        "25",
        "--width",
        "16",
        "--conv-channels",
        "8,16",
        "--fusion",
        "weighted-sum",
    )
    result = run_ok(
        "evaluate",
        tmp_path / "model",
        tmp_path / "prep",
        "--out",
        tmp_path / "eval",
        "--split",
        "all",
        "--json",
    )
    assert json.loads(result.stdout)["status"] == "built"
    metrics = json.loads((tmp_path / "eval/metrics.json").read_text())
    drops = {c: v["drop"] for c, v in metrics["contributions"]["columns"].items()}
    assert set(drops) == {"image", "audio"}
    assert max(drops.values()) > 0.1  # losing a modality the model relies on costs score


def test_regression_report(dataset, tmp_path):
    run_ok("preprocess", dataset, "--out", tmp_path / "prep", "--target", "weight")
    run_ok("extract-features", tmp_path / "prep", "--out", tmp_path / "feats")
    run_ok("fuse", tmp_path / "feats", "--out", tmp_path / "fused")
    run_ok("train", tmp_path / "fused", "--out", tmp_path / "model", *FAST_TRAIN)
    run_ok("evaluate", tmp_path / "model", tmp_path / "fused", "--out", tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert set(metrics["residuals"]["quantiles"]) == {"p05", "p25", "p50", "p75", "p95"}
    for name in ("predicted_vs_actual.png", "residuals.png", "report.html"):
        assert (tmp_path / "eval" / name).stat().st_size > 1000


def test_compare_table_markdown_and_json(pipeline):
    run_ok(
        "train",
        pipeline / "fused",
        "--out",
        pipeline / "model_lr",
        "--model",
        "logistic",
        *FAST_TRAIN,
    )
    run_ok("evaluate", pipeline / "model_lr", pipeline / "fused", "--out", pipeline / "eval_lr")
    a, b = (json.loads((pipeline / e / "metrics.json").read_text()) for e in ("eval", "eval_lr"))
    result = run_ok("compare", pipeline / "eval", pipeline / "eval_lr", "--json")
    rows = {r["metric"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["accuracy"]["values"] == [a["accuracy"], b["accuracy"]]
    assert rows["accuracy"]["differences"][1] == round(b["accuracy"] - a["accuracy"], 6)
    assert "contribution:image" in rows
    summary = json.loads(result.stdout)
    assert rows["log_loss"]["better"] == "lower" and rows["macro_f1"]["better"] == "higher"
    assert rows["contribution:image"]["better"] is None
    assert {"parameter": "model", "values": ["auto", "logistic"]} in summary["parameters"]
    assert summary["warnings"] == []  # the same split of the same data
    assert summary["evaluations"][0]["split"] == summary["evaluations"][1]["split"] == "test"
    md = run_ok("compare", pipeline / "eval", pipeline / "eval_lr", "--format", "md").stdout
    assert md.startswith("| evaluation | split | rows | data | model |")
    assert "| macro_f1 |" in md and "| model parameter |" in md
    table = run_ok("compare", pipeline / "eval", pipeline / "eval_lr").stdout
    assert "macro_f1" in table and "what each evaluation scored" in table
    # Another split: the numbers are not comparable one to one, and compare says so.
    run_ok("evaluate", pipeline / "model", pipeline / "fused", "--split", "val",
           "--out", pipeline / "eval_val")  # fmt: skip
    mixed = json.loads(run_ok("compare", pipeline / "eval", pipeline / "eval_val", "--json").stdout)
    (warning,) = mixed["warnings"]
    assert "scored other rows" in warning and "val of" in warning and "not test of" in warning
    assert mixed["parameters"] == []
    assert invoke("compare", pipeline / "eval").exit_code == EXIT_USAGE
    assert invoke("compare", pipeline / "eval", pipeline / "model").exit_code == 4


def _pipeline_file(tmp_path, dataset, image_size=32, gate="macro_f1=0.3"):
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"manifest: {dataset}\nout: work\npreprocess:\n  image-size: {image_size}\n"
        "train:\n  epochs: 40\n  patience: 10\n"
        f"evaluate:\n  fail-under: [{gate}]\n"
    )
    return path


def test_run_skips_up_to_date_stages_and_explains_dry_runs(dataset, tmp_path):
    path = _pipeline_file(tmp_path, dataset)
    dry = json.loads(run_ok("run", path, "--dry-run", "--json").stdout)
    assert [s["status"] for s in dry["stages"]] == ["would-build"] * 5
    assert not (tmp_path / "work").exists()
    first = json.loads(run_ok("run", path, "--json").stdout)
    assert [s["status"] for s in first["stages"]] == ["built"] * 5
    second = json.loads(run_ok("run", path, "--json").stdout)
    assert [s["status"] for s in second["stages"]] == ["up-to-date"] * 5
    changed = _pipeline_file(tmp_path, dataset, image_size=24)
    dry = json.loads(run_ok("run", changed, "--dry-run", "--json").stdout)
    assert "image_size 32 -> 24" in dry["stages"][0]["why"]
    assert dry["stages"][1]["why"] == "its upstream will be rebuilt"
    until = json.loads(run_ok("run", changed, "--until", "extract-features", "--json").stdout)
    assert [s["stage"] for s in until["stages"]] == ["preprocess", "extract-features"]


def test_run_gate_and_bad_pipeline_files(dataset, tmp_path):
    failing = invoke("run", _pipeline_file(tmp_path, dataset, gate="accuracy=1.1"))
    assert failing.exit_code == EXIT_GATE and "accuracy" in failing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"manifest: {dataset}\ntrain:\n  epochs: lots\n  out: elsewhere\nextra: 1\n")
    result = invoke("run", bad)
    assert result.exit_code == EXIT_USAGE and "extra" in result.stderr


@pytest.mark.parametrize("method", ["concat", "weighted-sum"])
def test_a_masked_column_is_what_fuse_gives_without_it(pipeline, tmp_path, method):
    """Contributions mask one column in the fused matrix; that must equal fusing again
    with the column absent from every row (as the slow, obvious way did)."""
    from mmcli import artifacts
    from mmcli.stages.evaluate import masked_matrix
    from mmcli.stages.fuse import apply_fusion, load_features

    fused_path = pipeline / "fused"
    if method != "concat":
        fused_path = tmp_path / "fused"
        run_ok("fuse", pipeline / "feats", "--out", fused_path, "--method", method)
    fused = artifacts.load(fused_path)
    table = fused.table("rows.parquet")
    x = fused.array("X.npy")
    feats, state = fused.upstream(), fused.tensors("fusion.safetensors")
    for column in fused.record.columns:
        absent = table.copy()
        absent[f"_present.{column}"] = False
        features, present = load_features(feats, absent)
        expected, _ = apply_fusion(
            features, present, state, fused.record.method, fused.record.weights
        )
        got = masked_matrix(x, fused, table, column)
        assert not np.array_equal(got, x), column  # the column did count
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
