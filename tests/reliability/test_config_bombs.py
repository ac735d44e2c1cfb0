"""Config and pipeline files built to exhaust: refused with exit 2 in well under a second."""

from __future__ import annotations

import time

import pytest
from conftest import cli

from mmcli.config import MAX_CONFIG_BYTES, TrainConfig, build
from mmcli.errors import EXIT_USAGE, UsageError


def _laughs(levels: int, width: int) -> str:
    """Each level an anchored list of ``width`` aliases to the level below: width**levels."""
    lines = [f"l0: &l0 [{', '.join(['ha'] * width)}]"]
    for k in range(1, levels):
        lines.append(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * width)}]")
    return "\n".join(lines) + f"\nepochs: *l{levels - 1}\n"


CASES = {
    "billion laughs": _laughs(levels=10, width=10),  # 10**10 values from under 1 KB
    "a few laughs": _laughs(levels=2, width=3),  # small, and still an alias
    "recursive alias": "epochs: &x [*x]\n",
    "merge key": "base: &b {epochs: 3}\n<<: *b\n",
}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_yaml_aliases_are_refused_quickly(tmp_path, text):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(UsageError, match="aliases"):
        build(TrainConfig, {"data": tmp_path, "out": tmp_path / "m"}, path)
    assert time.perf_counter() - start < 1.0


def test_anchors_without_aliases_and_plain_files_still_load(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("epochs: &e 3\nlr: 0.01\n")
    cfg = build(TrainConfig, {"data": tmp_path, "out": tmp_path / "m"}, path)
    assert cfg.epochs == 3 and cfg.lr == 0.01


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("big.yaml", b"epochs: 3\n" + b"#" * MAX_CONFIG_BYTES, "bytes, over the"),
        ("deep.yaml", b"epochs: " + b"[" * 200_000, "cannot parse config"),
        ("deep.toml", b"epochs = " + b"[" * 200_000, "cannot parse config"),
        ("binary.yaml", b"epochs: \xff\xfe\x00", "not UTF-8"),
    ],
)
def test_oversized_deep_or_binary_config_files_are_usage_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        build(TrainConfig, {"data": tmp_path, "out": tmp_path / "m"}, path)


def test_a_pipeline_file_bomb_exits_2_from_the_command_line(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "manifest: m.csv\nout: work\n"
        + _laughs(levels=9, width=9).replace("epochs: ", "train: {epochs: ").rstrip()
        + "}\n"
    )
    start = time.perf_counter()
    result = cli("run", path, "--dry-run")
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "aliases" in result.stderr and "Traceback" not in result.stderr
    assert time.perf_counter() - start < 10  # a subprocess start included; the parse is ms
