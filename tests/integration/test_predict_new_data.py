"""predict on new tables as a user first writes them (issue 17): the table in another
folder than its files, no id column, inputs kept as missing."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import unicodedata

import pandas as pd
import pytest
from conftest import MMCLI, cli, run_ok

from mmcli.errors import EXIT_DATA
from mmcli.io.paths import PathRejected, resolve_file


def _new_rows(dataset, n: int = 6) -> pd.DataFrame:
    return pd.read_csv(dataset, dtype=str, keep_default_na=False).head(n).drop(columns=["label"])


def test_every_row_failing_writes_the_file_and_exits_3_with_the_fix(pipeline, dataset, tmp_path):
    """The README's case: the table in the current folder, its paths relative to the data
    folder. Every row failed and predict crashed with "internal error: IndexError"."""
    _new_rows(dataset).to_csv(tmp_path / "new_rows.csv", index=False)
    args = ["predict", pipeline / "model", "new_rows.csv", "--out", "predictions.csv"]
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == EXIT_DATA, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert "none of its 6 rows could be predicted" in result.stderr
    assert "row 0: image: file not found: images/000.png" in result.stderr
    assert "... and 3 more in the error column" in result.stderr
    assert f"pass --data-root {dataset.parent}" in result.stderr
    written = pd.read_csv(tmp_path / "predictions.csv")
    assert len(written) == 6 and written["error"].notna().all()
    assert written["prediction"].isna().all()

    fixed = cli(*args, "--data-root", dataset.parent, "--json", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["rows"] == {"input": 6, "predicted": 6, "failed": 0}


def test_a_table_without_ids_is_predicted(pipeline, dataset, tmp_path):
    table = dataset.parent / "no_ids.csv"
    _new_rows(dataset).drop(columns=["id"]).to_csv(table, index=False)
    out = tmp_path / "p.csv"
    result = run_ok("predict", pipeline / "model", table, "--out", out, "--json")
    assert json.loads(result.stdout)["rows"]["predicted"] == 6
    written = pd.read_csv(out)
    assert "id" not in written.columns and written["prediction"].notna().all()
    assert list(written["row"]) == list(range(6))


def test_inputs_kept_as_missing_are_warned_about(pipeline, dataset, tmp_path):
    df = _new_rows(dataset)
    df.loc[2, "audio"] = "audio/gone.wav"
    df.loc[4, "weight"] = "heavy"
    table = dataset.parent / "kept.csv"
    df.to_csv(table, index=False)
    out = tmp_path / "p.csv"
    result = run_ok(
        "predict", pipeline / "model", table, "--out", out, "--on-error", "keep", "--json"
    )
    summary = json.loads(result.stdout)
    assert summary["rows"] == {"input": 6, "predicted": 6, "failed": 0, "warned": 2}
    assert summary["first warnings"][0].startswith("row 2: audio: file not found: audio/gone.wav")
    written = pd.read_csv(out)
    assert written["prediction"].notna().all() and written["error"].isna().all()
    assert "treated as missing" in written.loc[2, "warnings"]
    assert "weight" in written.loc[4, "warnings"]
    assert written["warnings"].notna().sum() == 2


def test_some_rows_failing_prints_the_first_reasons(pipeline, dataset, tmp_path):
    df = _new_rows(dataset)
    df.loc[1, "image"] = "images/gone.png"
    table = dataset.parent / "one_bad.csv"
    df.to_csv(table, index=False)
    result = run_ok("predict", pipeline / "model", table, "--out", tmp_path / "p.csv")
    assert "first errors:" in result.stdout
    assert "row 1: image: file not found: images/gone.png" in result.stdout


def test_a_missing_file_names_the_likely_cause(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images/a.png").write_bytes(b"x")
    with pytest.raises(PathRejected, match=r"uses \\ between folders: write / instead"):
        resolve_file("images\\a.png", tmp_path)
    name = unicodedata.normalize("NFC", "caf\u00e9.png")
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(PathRejected, match="exists in Unicode form NFC"):
        resolve_file(unicodedata.normalize("NFD", name), tmp_path)
    with pytest.raises(PathRejected, match="images/a.png exists: names are case-sensitive"):
        resolve_file("images/A.png", tmp_path)
    with pytest.raises(PathRejected) as plain:
        resolve_file("images/b.png", tmp_path)
    # no absolute path in a reason: it is stored in artifacts, the same bytes anywhere
    assert str(plain.value) == "file not found: images/b.png (in the data folder)"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_predict_reads_stdin_and_writes_stdout(pipeline, dataset, tmp_path, fmt):
    """In a pipe: TABLE - reads the rows (paths resolve against the current folder),
    --out - writes CSV and nothing else on stdout; the summary goes to stderr."""
    rows = _new_rows(dataset, n=5)
    text = rows.to_csv(index=False) if fmt == "csv" else rows.to_json(orient="records", lines=True)
    for extra in ([], ["--json"]):
        args = ["predict", pipeline / "model", "-", "--out", "-", *extra]
        result = cli(*args, input=text, cwd=dataset.parent)
        assert result.returncode == 0, result.stderr
        out = pd.read_csv(io.StringIO(result.stdout))
        assert list(out["id"]) == list(rows["id"]) and out["prediction"].notna().all()
        assert "predicted" in result.stderr
    summary = json.loads(result.stderr[result.stderr.index("{") :])
    assert summary["rows"] == {"input": 5, "predicted": 5, "failed": 0}
    assert not list(tmp_path.iterdir())  # no file written anywhere


def test_predict_to_a_closed_pipe_exits_quietly(pipeline, dataset_copy):
    rows = pd.concat([_new_rows(dataset_copy, n=90)] * 10)  # 900 rows: over a pipe buffer
    table = dataset_copy.parent / "many.csv"
    rows.to_csv(table, index=False)
    script = f"{' '.join(map(str, MMCLI))} predict {pipeline / 'model'} {table} --out - | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True
    )
    assert result.stdout.startswith("row,id,prediction")
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr


def test_an_empty_stdin_is_a_clear_error(pipeline, dataset):
    result = cli("predict", pipeline / "model", "-", "--out", "-", input="", cwd=dataset.parent)
    assert result.returncode == EXIT_DATA and "stdin" in result.stderr
    assert result.stdout == ""


def test_stdin_on_a_terminal_is_refused_at_once(pipeline):
    """`predict MODEL -` typed without a pipe would wait for a table to be typed."""
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [*MMCLI, "predict", str(pipeline / "model"), "-", "--out", "-"],
            stdin=follower, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 2 and "stdin, which is a terminal" in result.stderr
