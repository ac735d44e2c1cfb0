"""The typed records: docs/artifacts.md's reference matches the models, and records that do not fit
them (older, damaged, hand-edited) are clear errors, never tracebacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mmcli import artifacts
from mmcli.artifacts import records
from mmcli.errors import MissingInputError

ARTIFACTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "artifacts.md"
MODELS = {
    "preprocess": records.PreprocessRecord,
    "extract-features": records.ExtractRecord,
    "fuse": records.FuseRecord,
    "train": records.TrainRecord,
    "evaluate": records.EvaluateRecord,
}


def _section() -> str:
    text = ARTIFACTS_DOC.read_text(encoding="utf-8")
    start = text.index("## The record (`mmcli.json`)")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _fields(model: type) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def test_docs_example_record_loads_through_the_models():
    example = re.search(r"```json\n(.*?)```", _section(), re.S).group(1)
    record = records.parse(json.loads(example))
    assert isinstance(record, records.PreprocessRecord)
    assert record.format == records.FORMAT
    assert record.table.target.classes[:2] == ["eight", "five"]
    assert record.inputs.manifest.path == "../../sample_data/manifest.csv"


def test_docs_field_table_names_every_field_of_every_stage():
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", _section(), re.M)
    documented = {name: where.strip() for name, where in rows}
    common = _fields(records.Record)
    assert {n for n, w in documented.items() if w == "every record"} == common
    for stage, model in MODELS.items():
        own = {n for n, w in documented.items() if stage in [s.strip() for s in w.split(",")]}
        assert own == _fields(model) - common, stage


def test_a_written_record_round_trips(tmp_path):
    with artifacts.Builder(
        tmp_path / "out", stage="evaluate", params={"split": "test"}, inputs={}, key="a" * 64
    ) as b:
        (b.dir / "metrics.json").write_text("{}")
        b.info["summary"] = {"rows": 3}
    on_disk = json.loads((tmp_path / "out" / "mmcli.json").read_text())
    assert records.dump(records.parse(on_disk)) == on_disk
    assert artifacts.load(tmp_path / "out").record.summary == {"rows": 3}


def test_a_writer_that_leaves_out_a_field_publishes_nothing(tmp_path):
    with pytest.raises(records.RecordError, match="schema"):
        with artifacts.Builder(
            tmp_path / "out", stage="fuse", params={}, inputs={}, key="a" * 64
        ) as b:
            (b.dir / "X.npy").write_bytes(b"x")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("outputs"), r"damaged record \(outputs: required, and not given\)"),
        (lambda r: r.update(key="not a hash"), r"damaged record \(key: String should match"),
        (lambda r: r.update(surprise=1), r"damaged record \(surprise: unknown key\)"),
        (lambda r: r.update(stage="deploy"), r"damaged record"),
        (lambda r: r.update(format=1), r"built by an older mmcli \(record format 1"),
        (lambda r: r.update(format=99), r"not a record this mmcli reads \(format 99\)"),
        (lambda r: r["outputs"].update({"../x": r["outputs"]["metrics.json"]}), "outside"),
    ],
)
def test_a_record_that_does_not_fit_is_a_clear_error(tmp_path, change, message):
    with artifacts.Builder(
        tmp_path / "out", stage="evaluate", params={}, inputs={}, key="a" * 64
    ) as b:
        (b.dir / "metrics.json").write_text("{}")
    path = tmp_path / "out" / "mmcli.json"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(MissingInputError, match=message) as err:
        artifacts.load(tmp_path / "out")
    assert err.value.exit_code == 4 and "--force" in (err.value.hint or "")


def _evaluate_artifact(tmp_path):
    with artifacts.Builder(
        tmp_path / "out", stage="evaluate", params={}, inputs={}, key="a" * 64
    ) as b:
        (b.dir / "metrics.json").write_text("{}")
    return tmp_path / "out"


def test_a_record_nested_too_deep_or_too_big_is_damaged_not_a_crash(tmp_path, monkeypatch):
    from mmcli.artifacts import record as record_module
    from mmcli.stages import staleness

    out = _evaluate_artifact(tmp_path)
    path = out / "mmcli.json"
    good = path.read_text()
    path.write_text(
        good.replace('"params": {}', '"params": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    )
    with pytest.raises(MissingInputError, match="unreadable record .RecursionError"):
        artifacts.load(out)
    assert staleness.check(out).state == "incomplete"
    path.write_text(good)
    monkeypatch.setattr(record_module, "MAX_RECORD_BYTES", 100)
    with pytest.raises(MissingInputError, match="over the 0 MiB"):
        artifacts.load(out)


@pytest.mark.parametrize(
    "cache", ["[" * 100_000, "[1, 2]", '{"metrics.json": 5}', '{"metrics.json": [[1], 7]}']
)
def test_a_damaged_stat_cache_beside_an_artifact_only_costs_a_rehash(tmp_path, cache):
    out = _evaluate_artifact(tmp_path)
    (tmp_path / ".out.verified.json").write_text(cache)
    assert artifacts.load(out).file("metrics.json").read_text() == "{}"
    assert artifacts.load(out).damaged() == []
