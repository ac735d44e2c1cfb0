"""--config files: YAML and TOML, flags win, unknown keys and wrong types reported together."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmcli.config import PreprocessConfig, TrainConfig, build
from mmcli.errors import MissingInputError, UsageError


def test_defaults_file_and_flags_in_order(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("image-size: 32\nseed: 7\ninputs:\n  notes: text\n")
    cfg = build(PreprocessConfig, {"manifest": Path("m.csv"), "seed": 3, "sample_rate": None}, path)
    assert cfg.image_size == 32  # from the file
    assert cfg.seed == 3  # the flag wins
    assert cfg.sample_rate is None  # the default: the files' own rate, chosen by preprocess
    assert cfg.inputs == {"notes": "text"}


def test_toml(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('model = "logistic"\nepochs = 5\n')
    cfg = build(TrainConfig, {"data": Path("fused")}, path)
    assert (cfg.model, cfg.epochs) == ("logistic", 5)


def test_all_problems_reported_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: many\nlearning_rate: 0.1\nmodel: forest\n")
    with pytest.raises(UsageError) as err:
        build(TrainConfig, {"data": Path("fused")}, path)
    message = str(err.value)
    assert "epochs" in message and "learning-rate" in message and "model" in message


def test_paths_are_not_part_of_identity():
    a = build(PreprocessConfig, {"manifest": Path("a.csv"), "out": Path("x")}, None)
    b = build(PreprocessConfig, {"manifest": Path("b/a.csv"), "out": Path("y")}, None)
    assert a.identity() == b.identity()


def test_missing_and_unparseable_files(tmp_path):
    with pytest.raises(MissingInputError):
        build(TrainConfig, {"data": Path("f")}, tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(UsageError, match="cannot parse"):
        build(TrainConfig, {"data": Path("f")}, bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(UsageError, match="mapping"):
        build(TrainConfig, {"data": Path("f")}, listing)


def test_readme_limits_list_every_budget_with_its_default_and_flag():
    """Each `*_max_*` setting of preprocess is a row of README's Limits table giving its
    flag, its config key and its default as the config has it."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Limits", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    budgets = [n for n in PreprocessConfig.model_fields if "_max_" in n]
    assert len(budgets) >= 6
    for name in budgets:
        flag, default = "--" + name.replace("_", "-"), PreprocessConfig.model_fields[name].default
        row = next((r for r in rows if f"`{flag}` / `{name}`" in r), None)
        assert row is not None, name
        shown = row.split("|")[2].replace(",", "")
        assert f"{default:g}" in shown, (name, default, row)
