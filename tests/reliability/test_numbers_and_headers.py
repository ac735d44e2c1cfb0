"""Numbers past float32's range never become silent NaN predictions; forged array headers,
full disks and killed runs' folders are clear exits, never a crash or a leftover.

float32 holds up to 3.4e38. A finite number past it (or one that lands past it once
standardised with a small train std) is caught where it arises: predict gives that row an
``error`` cell and no prediction; the stages that fit or score (extract-features, fuse,
train, evaluate) stop with exit 3 naming the column and the row. An array whose header does
not match its record (forged together with the record's hash) is exit 4.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import FAST_TRAIN, cli, invoke, run_ok, start

from mmcli.artifacts.hashing import file_sha256, json_sha256
from mmcli.errors import EXIT_DATA, EXIT_IO, EXIT_MISSING, EXIT_USAGE

OUTSIDE = "is outside what the model's features can hold"
BEYOND = "is beyond float32's range"
#: The split of row i is SPLITS[i % 10]: rows 0-5 train, 6-7 val, 8-9 test.
SPLITS = ("train",) * 6 + ("val",) * 2 + ("test",) * 2


# -- helpers -----------------------------------------------------------------------------
def _resign(artifact, name, downstream=()):
    """Record a rewritten file of ``artifact`` as if it had been written so: its hash and
    size, the artifact's fingerprint, and the fingerprint each ``downstream`` artifact
    holds of it. A forger shipping a file and its record does exactly this."""
    path = artifact / "mmcli.json"
    record = json.loads(path.read_text())
    record["outputs"][name] = {
        "sha256": file_sha256(artifact / name),
        "bytes": (artifact / name).stat().st_size,
    }
    record["fingerprint"] = json_sha256(record["outputs"])
    path.write_text(json.dumps(record))
    for down in downstream:
        down_record = json.loads((down / "mmcli.json").read_text())
        down_record["inputs"]["upstream"]["fingerprint"] = record["fingerprint"]
        (down / "mmcli.json").write_text(json.dumps(down_record))


def _forge(artifact, name, array, downstream=()):
    np.save(artifact / name, array, allow_pickle=array.dtype.hasobject)
    _resign(artifact, name, downstream)


def _forged_header(path, kind):
    """Rewrite ``path`` with a header (and data) of one forged kind."""
    x = np.load(path)
    if kind == "fortran order":  # column-major bytes, as np.save writes a Fortran array
        flat = x.reshape(len(x), -1)
        with open(path, "wb") as f:
            header = {"descr": x.dtype.str, "fortran_order": True, "shape": flat.shape}
            np.lib.format.write_array_header_1_0(f, header)
            f.write(flat.T.tobytes())
        return
    if kind == "huge shape":  # the header claims far more rows than the file holds
        with open(path, "wb") as f:
            header = {"descr": x.dtype.str, "fortran_order": False, "shape": (10**12, *x.shape[1:])}
            np.lib.format.write_array_header_1_0(f, header)
            f.write(np.ascontiguousarray(x).tobytes())
        return
    forged = {
        "fewer rows": x[:-3],
        "other dtype": x.astype(np.float64 if x.dtype != np.float64 else np.float32),
        "1-D": x.reshape(len(x), -1)[:, 0],
        "object dtype": x.astype(object),
    }[kind]
    np.save(path, forged, allow_pickle=forged.dtype.hasobject)


def _numbers_manifest(folder, n=60, tiny=True, target="label"):
    """A number + category table with a fixed split: ``weight`` has a train std near
    1e-3, so 1e36 (well inside float32) standardises past its range."""
    rng = np.random.default_rng(0)
    k = np.arange(n) % 3
    weight = k * 1e-3 + rng.normal(0, 2e-4, n) if tiny else k + rng.normal(0, 0.5, n)
    df = pd.DataFrame(
        {
            "id": [f"n{i:03d}" for i in range(n)],
            "weight": weight,
            "colour": rng.choice(["red", "green"], n),
            "split": [SPLITS[i % 10] for i in range(n)],
        }
    )
    if target == "label":
        df["label"] = np.array(["cat", "dog", "owl"])[k]
    else:
        df[target] = k * 10.0 + rng.normal(0, 1, n)
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "numbers.csv", index=False)
    return df, folder / "numbers.csv"


@pytest.fixture(scope="module")
def numbers(tmp_path_factory):
    """A small chain on the number-only table (no media: each stage takes a second)."""
    root = tmp_path_factory.mktemp("numbers")
    df, manifest = _numbers_manifest(root / "data")
    run_ok("preprocess", manifest, "--out", root / "prep")
    run_ok("extract-features", root / "prep", "--out", root / "feats")
    run_ok("fuse", root / "feats", "--out", root / "fused")
    run_ok("train", root / "fused", "--out", root / "model", *FAST_TRAIN)
    run_ok("train", root / "prep", "--out", root / "e2e", "--epochs", "3")
    return root


@pytest.fixture()
def nwork(numbers, tmp_path):
    """A private copy of the number-only chain."""
    import shutil

    for name in ("data", "prep", "feats", "fused", "model", "e2e"):
        shutil.copytree(numbers / name, tmp_path / "n" / name)
    return tmp_path / "n"


def _predict(model, rows: pd.DataFrame, tmp_path, *extra):
    table = tmp_path / "new.csv"
    rows.to_csv(table, index=False)
    out = tmp_path / "predictions.csv"
    result = invoke("predict", model, table, "--out", out, *extra)
    return result, (pd.read_csv(out) if result.exit_code == 0 else None)


def _assert_no_silent_rows(out: pd.DataFrame) -> None:
    """Every row has finite probabilities summing to 1 and no error, or an error and no
    prediction at all."""
    probs = out[[c for c in out.columns if c.startswith("prob_")]].to_numpy(dtype=float)
    for i in range(len(out)):
        if isinstance(out["error"].iloc[i], str):
            assert pd.isna(out["prediction"].iloc[i]) and np.isnan(probs[i]).all()
        else:
            assert np.isfinite(probs[i]).all() and abs(probs[i].sum() - 1) < 1e-6, out.iloc[i]


# -- family 5: numbers that overflow ----------------------------------------------------------
def test_predict_gives_overflowing_numbers_an_error_cell(pipeline, dataset, tmp_path):
    rows = pd.read_csv(dataset).head(8)
    rows["weight"] = rows["weight"].astype(object)
    # the train std of weight is about 1.1: 3.9e38 standardises past 3.4e38, 3.3e38 does not
    cases = {1: "1e39", 2: "-1e300", 3: "3.9e38", 4: "3.3e38", 5: "1e30"}
    for i, value in cases.items():
        rows.at[i, "weight"] = value
    result, out = _predict(
        pipeline / "model", rows, tmp_path, "--data-root", dataset.parent, "--json"
    )
    assert result.exit_code == 0, result.stderr
    for i in (1, 2, 3):  # past float32 itself: refused as the cell is read
        error = out["error"].iloc[i]
        assert error.startswith("weight: ") and BEYOND in error, error
        assert pd.isna(out["prediction"].iloc[i])
    assert OUTSIDE not in str(out["error"].iloc[4])  # fits float32 once standardised
    for i in (0, 5, 6, 7):
        assert pd.isna(out["error"].iloc[i]) and isinstance(out["prediction"].iloc[i], str)
    _assert_no_silent_rows(out)
    summary = json.loads(result.stdout)
    assert summary["rows"]["failed"] == int(out["error"].notna().sum()) >= 3


@pytest.mark.parametrize("model", ["model", "e2e"])
def test_small_train_std_then_a_huge_value_is_that_rows_error(nwork, model, tmp_path):
    df = pd.read_csv(nwork / "data/numbers.csv").head(6).drop(columns=["label", "split"])
    df.loc[2, "weight"] = 1e36  # inside float32, past it once divided by a std near 1e-3
    df.loc[3, "weight"] = 1e30  # 1e33 standardised: kept
    result, out = _predict(nwork / model, df, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert out["error"].iloc[2].startswith("weight: value 1e+36 ") and OUTSIDE in out["error"][2]
    assert out["error"].isna().sum() == 5
    _assert_no_silent_rows(out)
    failed = invoke(
        "predict", nwork / model, tmp_path / "new.csv", "--out", tmp_path / "p2.csv",
        "--on-error", "fail",
    )  # fmt: skip
    assert failed.exit_code == EXIT_DATA and "row 2: weight: value 1e+36" in failed.stderr


@pytest.mark.parametrize(
    ("row", "value", "message"),
    [
        (8, 1e36, "value 1e+36 " + OUTSIDE),  # a test row: standardised past float32
        (6, -3.3e36, "value -3.3e+36 " + OUTSIDE),  # a val row
    ],
)
def test_fitting_stages_refuse_an_overflowing_number_naming_column_and_row(
    tmp_path, row, value, message
):
    df, manifest = _numbers_manifest(tmp_path / "data")
    df.loc[row, "weight"] = value
    df.to_csv(manifest, index=False)
    run_ok("preprocess", manifest, "--out", tmp_path / "prep")
    for stage, args in (
        ("extract-features", []),
        ("train", ["--model", "e2e", "--epochs", "1"]),
    ):
        result = invoke(stage, tmp_path / "prep", "--out", tmp_path / stage, *args)
        assert result.exit_code == EXIT_DATA, (stage, result.stderr)
        assert f"column 'weight', row {row}: {message}" in result.stderr, result.stderr
        assert not (tmp_path / stage).exists()


@pytest.mark.parametrize("where", ["weight", "price"])
def test_numbers_past_float32_are_rejected_rows_at_preprocess(tmp_path, where):
    """A number past float32's largest value (3.4e38), in a feature or a regression
    target, is that row's rejection; one just inside is kept."""
    target = "price" if where == "price" else "label"
    df, manifest = _numbers_manifest(tmp_path / "data", tiny=False, target=target)
    column = "weight" if where != "price" else "price"
    df[column] = df[column].astype(object)
    df.loc[[1, 2, 3, 4], column] = ["3.41e38", "-1e300", str(10**400), "3.39e38"]
    df.to_csv(manifest, index=False)
    result = invoke(
        "preprocess", manifest, "--out", tmp_path / "prep", "--target", target, "--json"
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"]["rejected"] == 3, summary
    rejects = pd.read_parquet(tmp_path / "prep" / "rejected.parquet")
    assert sorted(rejects["row"]) == [1, 2, 3]
    assert all(BEYOND in r for r in rejects["reason"]), rejects["reason"].tolist()
    run_ok("extract-features", tmp_path / "prep", "--out", tmp_path / "feats")


def test_a_regression_target_too_large_to_learn_is_a_data_error(tmp_path):
    df, manifest = _numbers_manifest(tmp_path / "data", tiny=False, target="price")
    df.loc[6, "price"] = 3.3e38  # a val row, inside float32: its squared error is not
    df.to_csv(manifest, index=False)
    run_ok("preprocess", manifest, "--out", tmp_path / "prep", "--target", "price")
    run_ok("extract-features", tmp_path / "prep", "--out", tmp_path / "feats")
    run_ok("fuse", tmp_path / "feats", "--out", tmp_path / "fused")
    for data in ("fused", "prep"):
        result = invoke("train", tmp_path / data, "--out", tmp_path / "m", "--epochs", "2")
        assert result.exit_code == EXIT_DATA, result.stderr
        assert "price" in result.stderr or "target" in result.stderr, result.stderr
        assert not (tmp_path / "m").exists()


def test_the_standard_encoder_refuses_statistics_that_overflow():
    """Defence in depth behind preprocess's range check: a fit that overflows names the
    value to blame rather than giving NaN features."""
    from mmcli.encoders.base import Overflow
    from mmcli.encoders.tabular import NumberStandard

    with pytest.raises(Overflow) as caught:
        NumberStandard().fit(np.array([1.0, 2e300, 3.0]))
    assert caught.value.index == 1 and "too large to standardise" in caught.value.message
    NumberStandard().fit(np.array([1.0, 3.4e38, -3.4e38]))  # float32's extremes: fine


def test_non_finite_or_huge_fused_values_never_train_or_score(nwork):
    x = np.load(nwork / "fused/X.npy")
    table = pd.read_parquet(nwork / "fused/rows.parquet")
    train_row = int(np.flatnonzero(table["_split"] == "train")[0])
    test_row = int(np.flatnonzero(table["_split"] == "test")[0])
    nan = x.copy()
    nan[test_row, 0] = np.nan
    _forge(nwork / "fused", "X.npy", nan, downstream=[nwork / "model"])
    for args in (
        ("train", nwork / "fused", "--out", nwork / "m2", "--epochs", "1"),
        ("evaluate", nwork / "model", nwork / "fused", "--out", nwork / "ev"),
    ):
        result = invoke(*args)
        assert result.exit_code == EXIT_MISSING, result.stderr
        assert f"damaged artifact: its row {test_row} holds NaN or inf" in result.stderr
    # finite, but too large for the network: its outputs overflow
    huge = x.copy()
    huge[[train_row, test_row], :-2] = 3e38
    _forge(nwork / "fused", "X.npy", huge, downstream=[nwork / "model"])
    result = invoke("evaluate", nwork / "model", nwork / "fused", "--out", nwork / "ev")
    assert result.exit_code == EXIT_DATA, result.stderr
    assert "the model's output is not a finite number for 1 of" in result.stderr
    result = invoke("train", nwork / "fused", "--out", nwork / "m3", "--epochs", "2")
    assert result.exit_code == EXIT_DATA, result.stderr
    assert "training diverged at epoch 1" in result.stderr
    assert f"row {table['_row'][train_row]}'s output first" in result.stderr


def test_a_non_finite_model_output_is_that_rows_error(nwork, tmp_path, monkeypatch):
    import torch

    from mmcli.models import training

    real = training.predict

    def overflowing(module, inputs, *args, **kwargs):
        out = real(module, inputs, *args, **kwargs)
        out[1] = torch.inf
        out[3, 0] = torch.nan
        return out

    monkeypatch.setattr(training, "predict", overflowing)
    df = pd.read_csv(nwork / "data/numbers.csv").head(5)
    result, out = _predict(nwork / "model", df, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert [i for i in range(5) if isinstance(out["error"][i], str)] == [1, 3]
    assert "the model's output is not a finite number" in out["error"][1]
    _assert_no_silent_rows(out)


@pytest.mark.parametrize("damage", ["NaN in a present row", "all NaN", "wider than dim"])
def test_damaged_feature_files_are_never_fused(nwork, damage):
    name = "features/weight.npy"
    feats = np.load(nwork / "feats" / name)
    if damage == "NaN in a present row":
        feats[17] = np.nan
    elif damage == "all NaN":
        feats[:] = np.nan
    else:
        feats = np.concatenate([feats, feats], axis=1)
    _forge(nwork / "feats", name, feats)
    result = invoke("fuse", nwork / "feats", "--out", nwork / "fused", "--force")
    assert result.exit_code == EXIT_MISSING, result.stderr
    assert "damaged artifact" in result.stderr and name in result.stderr


# -- family 10: forged headers, full disks, leftovers ----------------------------------------
HEADERS = ["huge shape", "fewer rows", "other dtype", "1-D", "fortran order", "object dtype"]


@pytest.mark.parametrize("kind", HEADERS)
def test_forged_array_headers_are_damaged_artifacts(nwork, work, kind):
    image = json.loads((work / "prep/mmcli.json").read_text())["schema"]["arrays"]["image"]
    for artifact, name, args in (
        (nwork / "fused", "X.npy", ("train", nwork / "fused", "--out", nwork / "m2")),
        (nwork / "feats", "features/weight.npy", ("fuse", nwork / "feats", "--out", nwork / "f2")),
        (work / "prep", image, ("extract-features", work / "prep", "--out", work / "x2")),
    ):
        _forged_header(artifact / name, kind)
        _resign(artifact, name)
        result = invoke(*args)
        assert result.exit_code == EXIT_MISSING, (name, result.stderr)
        assert name in result.stderr and "Traceback" not in result.stderr
        assert "damaged artifact" in result.stderr or "unreadable array" in result.stderr


def _file_limit(size):
    def limit():  # any write past ``size`` bytes fails with EFBIG (SIGXFSZ is ignored)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_train_and_predict_on_a_full_disk_exit_6(nwork, pipeline, dataset, tmp_path):
    before = (nwork / "model/mmcli.json").read_text()
    result = cli(
        "train", nwork / "fused", "--out", nwork / "model", "--force", "--epochs", "2",
        "--model", "mlp", preexec_fn=_file_limit(4096),
    )  # fmt: skip
    assert result.returncode == EXIT_IO, result.stderr
    assert str(nwork / "model") in result.stderr and "Traceback" not in result.stderr
    assert (nwork / "model/mmcli.json").read_text() == before
    assert not list(nwork.glob(".model.tmp-*"))
    # predict: its scratch folder (decoded media) fills first
    result = cli(
        "predict", pipeline / "model", dataset, "--out", tmp_path / "p.csv",
        preexec_fn=_file_limit(16384), env={"TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == EXIT_IO, result.stderr
    assert "scratch files" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("mmcli-predict-*"))
    # ... or the output file (no media: nothing in scratch)
    table = nwork / "data/numbers.csv"
    result = cli("predict", nwork / "model", table, "--out", tmp_path / "p.csv",
                 preexec_fn=_file_limit(512))  # fmt: skip
    assert result.returncode == EXIT_IO, result.stderr
    assert "could not write the predictions" in result.stderr
    assert not (tmp_path / "p.csv").exists() and not list(tmp_path.glob(".p.csv.tmp-*"))


def test_predict_into_an_existing_folder_is_a_usage_error_before_any_work(nwork):
    (nwork / "out.csv").mkdir()
    result = invoke(
        "predict", nwork / "model", nwork / "data/numbers.csv", "--out", nwork / "out.csv"
    )
    assert result.exit_code == EXIT_USAGE, result.stderr
    assert "is a folder" in result.stderr and "encoding" not in result.stderr


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_folder_goes_when_the_next_run_is_up_to_date(work):
    proc = start("extract-features", work / "prep", "--out", work / "feats", "--force")
    deadline = time.monotonic() + 60
    while not list(work.glob(".feats.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    assert list(work.glob(".feats.tmp-*")), "the run was killed before it made its folder"
    rerun = cli("extract-features", work / "prep", "--out", work / "feats", "--json")
    assert rerun.returncode == 0 and json.loads(rerun.stdout)["status"] == "up-to-date"
    assert not list(work.glob(".feats.tmp-*"))


def test_leftovers_of_dead_runs_go_those_of_live_processes_stay(nwork):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _dead_pid()
        for name in (f".model.tmp-{dead}", f".model.old-{dead}", f".model.tmp-{live.pid}"):
            (nwork / name).mkdir()
            (nwork / name / "weights").write_bytes(b"x")
        result = invoke("train", nwork / "fused", "--out", nwork / "model", *FAST_TRAIN, "--json")
        assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "up-to-date"
        left = sorted(p.name for p in nwork.glob(".model.*-*") if p.is_dir())
        assert left == [f".model.tmp-{live.pid}"]
    finally:
        live.kill()
        live.wait()
    assert os.path.isdir(nwork / f".model.tmp-{live.pid}")
