"""mmcli from Python: the stages the command line runs, with the same results."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from conftest import run_ok

from mmcli import api
from mmcli.errors import UsageError


def test_a_stage_from_python_writes_what_the_command_writes(dataset, pipeline, tmp_path):
    summary = api.run_stage("preprocess", manifest=dataset, out=tmp_path / "prep")
    assert summary["status"] == "built" and summary["rows"]["kept"] == 90
    for name in ("rows.parquet", "arrays/image.npy", "arrays/audio.npy"):
        assert (tmp_path / "prep" / name).read_bytes() == (pipeline / "prep" / name).read_bytes()
    again = api.run_stage("preprocess", manifest=dataset, out=tmp_path / "prep")
    assert again["status"] == "up-to-date"
    prep = api.load(tmp_path / "prep")
    assert prep.stage == "preprocess" and len(prep.table("rows.parquet")) == 90


def test_predict_takes_and_gives_a_dataframe(dataset, pipeline, tmp_path):
    rows = pd.read_csv(dataset).head(7).drop(columns=["label"])
    rows.loc[2, "image"] = "images/none.png"
    predicted = api.predict(pipeline / "model", rows, data_root=dataset.parent)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    run_ok("predict", pipeline / "model", tmp_path / "rows.csv", "--out", tmp_path / "p.parquet",
           "--data-root", dataset.parent)  # fmt: skip
    pd.testing.assert_frame_equal(predicted, pd.read_parquet(tmp_path / "p.parquet"))
    assert list(predicted["id"]) == list(rows["id"])
    assert "not found" in predicted.loc[2, "error"] and predicted["error"].isna().sum() == 6


def test_mistakes_are_the_command_lines_errors():
    with pytest.raises(UsageError, match="no stage 'trian'; did you mean 'train'"):
        api.run_stage("trian", data="x")
    with pytest.raises(UsageError, match="image-sise: unknown key; did you mean 'image-size'"):
        api.config("preprocess", manifest="m.csv", image_sise=32)


def test_plotting_leaves_a_notebooks_matplotlib_alone(pipeline, tmp_path):
    code = (
        "import sys, matplotlib\n"
        "matplotlib.use('svg')\n"
        "from mmcli import api\n"
        f"api.run_stage('evaluate', model={str(pipeline / 'model')!r}, "
        f"data={str(pipeline / 'fused')!r}, out={str(tmp_path / 'eval')!r})\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["svg", "False"]
    assert (tmp_path / "eval" / "report.html").is_file()
