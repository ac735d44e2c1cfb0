"""One bad cell never sinks a run: whatever a cell holds, and whatever a decoder raises on
its file, it becomes that row's rejection (preprocess) or ``error`` cell (predict)."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from conftest import cli

#: Cells a hostile table can hold, by column; each must reject (or, for text, keep) its row.
BAD = {
    "image": [
        "images/a\0b.png",  # NUL byte
        "images/" + "x" * 5000 + ".png",  # longer than any file name
        "images/\udc80\udcff.png",  # lone surrogates: not encodable as a path
        {"nested": "object"},
        ["a", "list"],
    ],
    "audio": ["audio/\0.wav", 12345],
    "weight": [{"a": 1}, "1e999", "\0"],
}


def _hostile_rows(dataset) -> tuple[pd.DataFrame, dict[int, str]]:
    df = pd.read_csv(dataset, dtype=str, keep_default_na=False).astype(object)
    bad_rows = {}
    row = 0
    for column, cells in BAD.items():
        for cell in cells:
            df.at[row, column] = cell
            bad_rows[row] = column
            row += 1
    df.at[row, "caption"] = "text with a \0 NUL byte"  # text keeps it: a value, not a path
    return df, bad_rows


def _write(df: pd.DataFrame, path) -> None:
    if path.suffix == ".jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for record in df.to_dict(orient="records"):
                f.write(json.dumps(record) + "\n")
    else:  # Parquet holds one type per column, and valid UTF-8 only
        pd.DataFrame({c: [_parquet_cell(v) for v in df[c]] for c in df.columns}).to_parquet(path)


def _parquet_cell(value: object) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value).replace("\udc80\udcff", "\u202e")


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_hostile_cells_reject_their_rows_and_nothing_else(dataset_copy, tmp_path, suffix):
    df, bad_rows = _hostile_rows(dataset_copy)
    manifest = dataset_copy.parent / f"hostile{suffix}"
    _write(df, manifest)
    result = cli("preprocess", manifest, "--out", tmp_path / "prep", "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rejected = pd.read_parquet(tmp_path / "prep" / "rejected.parquet")
    found = dict(zip(rejected["row"], rejected["column"], strict=True))
    assert found == bad_rows
    rows = pd.read_parquet(tmp_path / "prep" / "rows.parquet")
    assert len(rows) == len(df) - len(bad_rows)


#: Makes the image decoder raise an exception of a kind no decoder is expected to raise,
#: for files whose name holds "boom" (a library bug, a bomb that slipped through).
HOOK = """\
from mmcli.stages import media
_real = media.load_image
def _boom(source, *args, **kwargs):
    if isinstance(source, bytes) and source.startswith(b"BOOM"):
        raise {error}("the decoder fell over")
    return _real(source, *args, **kwargs)
media.load_image = _boom
"""


@pytest.mark.parametrize("error", ["IndexError", "RuntimeError", "MemoryError", "KeyError"])
def test_any_exception_from_a_decoder_is_that_rows_reason(dataset_copy, tmp_path, error):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOOK.format(error=error))
    image = dataset_copy.parent / "images" / "003.png"
    image.write_bytes(b"BOOM" + image.read_bytes())
    env = {"PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])}
    for workers in ("1", "2"):
        out = tmp_path / f"prep{workers}"
        result = cli("preprocess", dataset_copy, "--out", out, "--workers", workers, env=env)
        assert result.returncode == 0, result.stderr
        rejected = pd.read_parquet(out / "rejected.parquet")
        assert rejected["file"].tolist() == ["images/003.png"]
        assert f"cannot decode image: {error}" in rejected["reason"].iloc[0]


def test_predict_gives_each_hostile_row_an_error_cell(pipeline, dataset, tmp_path):
    df, bad_rows = _hostile_rows(dataset)
    table = dataset.parent / f"hostile-predict-{os.getpid()}.jsonl"
    try:
        _write(df.drop(columns=["label"]), table)
        out = tmp_path / "predictions.csv"
        result = cli("predict", pipeline / "model", table, "--out", out)
        assert result.returncode == 0, result.stderr
    finally:
        table.unlink(missing_ok=True)
    predictions = pd.read_csv(out)
    failed = predictions[predictions["error"].notna()]
    assert failed["row"].tolist() == sorted(bad_rows)
    for row, column in bad_rows.items():
        assert predictions.at[row, "error"].startswith(f"{column}: ")
    assert predictions.loc[predictions["error"].isna(), "prediction"].notna().all()


def test_a_text_over_its_budget_rejects_its_row(dataset_copy, tmp_path):
    df = pd.read_csv(dataset_copy, dtype=str, keep_default_na=False)
    df.at[1, "caption"] = "a" * 100  # at the budget: kept
    df.at[2, "caption"] = "a" * 101
    df.at[3, "caption"] = "\ufdfa" * 10  # 10 characters, 180 once NFKC-normalised
    df.at[4, "caption"] = "word " * 60_000  # 300,000: over the default budget too
    df.to_csv(dataset_copy, index=False)
    for budget, expected in (("100", [2, 3, 4]), (None, [4])):
        out = tmp_path / f"prep{budget}"
        extra = ["--text-max-chars", budget] if budget else []
        result = cli("preprocess", dataset_copy, "--out", out, *extra)
        assert result.returncode == 0, result.stderr
        rejected = pd.read_parquet(out / "rejected.parquet")
        assert rejected["row"].tolist() == expected
        assert all("character budget (raise --text-max-chars)" in r for r in rejected["reason"])
    reasons = pd.read_parquet(tmp_path / "prep100" / "rejected.parquet")["reason"].tolist()
    assert "text of 101 characters, over the 100" in reasons[0]
    assert "180 characters once Unicode-normalised" in reasons[1]


def test_predict_gives_a_text_over_the_models_budget_an_error_cell(pipeline, dataset, tmp_path):
    df = pd.read_csv(dataset, dtype=str, keep_default_na=False).head(4).drop(columns=["label"])
    df.at[1, "caption"] = "word " * 60_000
    table = tmp_path / "new.csv"
    df.to_csv(table, index=False)
    out = tmp_path / "predictions.csv"
    result = cli("predict", pipeline / "model", table, "--out", out, "--data-root", dataset.parent)
    assert result.returncode == 0, result.stderr
    predictions = pd.read_csv(out)
    assert predictions["error"].notna().tolist() == [False, True, False, False]
    assert predictions.at[1, "error"].startswith("caption: text of 300,000 characters")
