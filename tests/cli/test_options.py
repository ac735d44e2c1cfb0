"""Each stage command's options are its config model's fields: same names, same defaults.

The help is read as a user reads it, and compared with the pydantic fields in
mmcli/config.py; then every flag is given once and the config the stage would get
is checked, so a flag cannot reach the wrong field or be dropped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args, get_origin

import pytest
from pydantic import TypeAdapter
from typer.testing import CliRunner

from mmcli import config
from mmcli.cli import COMMANDS, app
from mmcli.errors import UsageError

STAGES = {name: function.stage for name, function in COMMANDS if hasattr(function, "stage")}
COMMON_FLAGS = {"--config", "--force", "--wait", "--json", "--quiet", "--debug", "--help"}


def test_every_stage_command_is_made_from_its_config():
    assert set(STAGES) == {
        "preprocess",
        "extract-features",
        "fuse",
        "train",
        "tune",
        "evaluate",
        "merge",
        "predict",
    }


def _help(name: str) -> str:
    # Wide enough that no help line wraps inside a value.
    result = CliRunner().invoke(app, [name, "--help"], terminal_width=300, max_content_width=300)
    assert result.exit_code == 0, result.output
    return result.stdout


def _entries(text: str, section: str) -> list[tuple[str, str]]:
    """The (first column, help) rows of one section of a plain click help page."""
    lines = text.split(f"\n{section}:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    rows: list[list[str]] = []
    for line in lines:
        if re.match(r"  \S", line):
            head, _, rest = line.strip().partition("  ")
            rows.append([head, rest.strip()])
        else:  # the help continues under the first column
            rows[-1][1] = f"{rows[-1][1]} {line.strip()}".strip()
    return [(head, help_text) for head, help_text in rows]


def _fields(name: str) -> dict:
    model = getattr(config, STAGES[name].config)
    return {
        field: info
        for field, info in model.model_fields.items()
        if field != "wait" and not (info.json_schema_extra or {}).get("config_only")
    }


def _expected_flags(field: str, info) -> tuple[str, ...]:
    return tuple((info.json_schema_extra or {}).get("flags", [f"--{field.replace('_', '-')}"]))


def _check_default(field: str, info, help_text: str) -> None:
    shown = re.findall(r"\(default: ([^()]*)\)", help_text)
    extra = info.json_schema_extra or {}
    if "default_text" in extra:
        assert shown == [extra["default_text"]], field
        return
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    if default in (None, [], {}):
        assert shown == [], f"{field}: shows a default it does not have"
        return
    assert len(shown) == 1, f"{field}: no default shown in {help_text!r}"
    typed = shown[0].split(",") if get_origin(info.annotation) is list else shown[0]
    assert TypeAdapter(info.annotation).validate_python(typed) == default, field


@pytest.mark.parametrize("name", sorted(STAGES))
def test_help_shows_each_field_with_its_default(name):
    text = _help(name)
    fields = _fields(name)
    arguments = [f for f, info in fields.items() if (info.json_schema_extra or {}).get("argument")]
    shown_arguments = _entries(text, "Arguments") if arguments else []
    assert [head.split()[0] for head, _ in shown_arguments] == [
        (fields[f].json_schema_extra or {}).get("metavar", f.upper()) for f in arguments
    ]
    for field, (_, help_text) in zip(arguments, shown_arguments, strict=True):
        assert help_text.startswith(fields[field].description), field

    options = {}
    for head, help_text in _entries(text, "Options"):
        decls = tuple(d.strip(",") for d in head.split() if d.startswith("-"))
        metavar = head.split()[-1] if not head.split()[-1].startswith("-") else None
        options[max(decls, key=len)] = (decls, metavar, help_text)
    wanted = {f: info for f, info in fields.items() if f not in arguments}
    by_flag = {_expected_flags(f, info)[0]: f for f, info in wanted.items()}
    # every field meant to be a flag has an option, and every option (beyond the shared) a field
    assert set(options) - COMMON_FLAGS == set(by_flag)
    for flag, field in by_flag.items():
        info = wanted[field]
        decls, metavar, help_text = options[flag]
        assert sorted(decls) == sorted(_expected_flags(field, info)), field
        assert help_text.startswith(info.description), field
        _check_default(field, info, help_text)
        annotation = info.annotation
        if get_origin(annotation) is Literal:
            assert metavar == "[" + "|".join(get_args(annotation)) + "]", field


# Every flag of each stage command, given once, and the config field it must set.
CASES = {
    "preprocess": (
        "m.csv -o p --target y --task regression --input a:text,b:image --input c:ignore "
        "--id-column key --data-root d --image-size 32 --sample-rate 8000 --audio-seconds 1.5 "
        "--video-frames 4 --video-max-seconds 30 --val-fraction 0.2 --test-fraction 0.1 "
        "--audio-max-decoded-mb 50 --video-max-decoded-megapixels 900 --text-max-chars 99 "
        "--image-max-megapixels 12 --audio-max-seconds 60 "
        "--seed 3 --on-error keep --max-errors 0.5 -j 2 --shard 1/2",
        {
            "manifest": Path("m.csv"),
            "out": Path("p"),
            "target": "y",
            "task": "regression",
            "inputs": {"a": "text", "b": "image", "c": "ignore"},
            "id_column": "key",
            "data_root": Path("d"),
            "image_size": 32,
            "sample_rate": 8000,
            "audio_seconds": 1.5,
            "video_frames": 4,
            "video_max_seconds": 30.0,
            "audio_max_decoded_mb": 50.0,
            "video_max_decoded_megapixels": 900.0,
            "text_max_chars": 99,
            "image_max_megapixels": 12.0,
            "audio_max_seconds": 60.0,
            "val_fraction": 0.2,
            "test_fraction": 0.1,
            "seed": 3,
            "on_error": "keep",
            "max_errors": 0.5,
            "workers": 2,
            "shard": "1/2",
        },
    ),
    "extract-features": (
        "p --out f --image pixels --audio logmel --text hashing --video pixels "
        "--video-pool mean --workers 1 --shard 2/2",
        {
            "prep": Path("p"),
            "out": Path("f"),
            "image": "pixels",
            "audio": "logmel",
            "text": "hashing",
            "video": "pixels",
            "video_pool": "mean",
            "workers": 1,
            "shard": "2/2",
        },
    ),
    "fuse": (
        "f -o x --method weighted-sum --weights image=1,text=0.5 --weights audio=2 "
        "--width 16 --seed 4 --scale feature",
        {
            "feats": Path("f"),
            "out": Path("x"),
            "method": "weighted-sum",
            "scale": "feature",
            "weights": {"image": 1.0, "text": 0.5, "audio": 2.0},
            "width": 16,
            "seed": 4,
        },
    ),
    "train": (
        "d -o m --model mlp --fusion gated --hidden 8 --dropout 0.1 --width 8 "
        "--conv-channels 4,8 --rnn lstm --rnn-hidden 8 --embed-dim 8 --text-max-len 5 "
        "--video-temporal gru --modality-dropout 0.1 --epochs 3 --batch-size 4 --lr 0.01 "
        "--weight-decay 0 --patience 2 --class-weight balanced --sampler weighted "
        "--augment all --loss huber --workers 1 --device cpu --seed 5",
        {
            "data": Path("d"),
            "out": Path("m"),
            "model": "mlp",
            "fusion": "gated",
            "hidden": 8,
            "dropout": 0.1,
            "width": 8,
            "conv_channels": [4, 8],
            "rnn": "lstm",
            "rnn_hidden": 8,
            "embed_dim": 8,
            "text_max_len": 5,
            "video_temporal": "gru",
            "modality_dropout": 0.1,
            "epochs": 3,
            "batch_size": 4,
            "lr": 0.01,
            "weight_decay": 0.0,
            "patience": 2,
            "class_weight": "balanced",
            "sampler": "weighted",
            "augment": "all",
            "loss": "huber",
            "workers": 1,
            "device": "cpu",
            "seed": 5,
        },
    ),
    "tune": (
        "d -o t --model e2e --fusion gated --trials 3 --timeout 60 --folds 4 "
        "--params lr,dropout --params width --prune none --base b.yaml --workers 1 "
        "--device cpu --seed 2",
        {
            "data": Path("d"),
            "out": Path("t"),
            "model": "e2e",
            "fusion": "gated",
            "trials": 3,
            "timeout": 60.0,
            "folds": 4,
            "params": ["lr,dropout", "width"],
            "prune": "none",
            "base": Path("b.yaml"),
            "workers": 1,
            "device": "cpu",
            "seed": 2,
        },
    ),
    "evaluate": (
        "m d -o e --split val --fail-under accuracy=0.5,macro_f1=0.4 --fail-under rmse=1 "
        "--data-root r",
        {
            "model": Path("m"),
            "data": Path("d"),
            "out": Path("e"),
            "split": "val",
            "data_root": Path("r"),
            "fail_under": ["accuracy=0.5,macro_f1=0.4", "rmse=1"],
        },
    ),
    "merge": ("a b -o m", {"shards": [Path("a"), Path("b")], "out": Path("m")}),
    "predict": (
        "m t -o p.parquet --data-root r --on-error fail",
        {
            "model": Path("m"),
            "table": Path("t"),
            "out": Path("p.parquet"),
            "data_root": Path("r"),
            "on_error": "fail",
        },
    ),
}


@pytest.fixture()
def built(monkeypatch):
    """The configs the commands build; the stage itself never runs."""
    configs = []
    real = config.build

    def build(cls, flags, config_file):
        configs.append(real(cls, flags, config_file))
        raise UsageError("config built")

    monkeypatch.setattr(config, "build", build)

    def invoke(*args: str) -> config.StageConfig:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 2 and "config built" in result.stderr, result.output
        return configs.pop()

    return invoke


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_flag_sets_its_field(name, built):
    args, expected = CASES[name]
    assert set(expected) == set(_fields(name)), "give every flag of the command here"
    cfg = built(name, *args.split())
    assert {field: getattr(cfg, field) for field in expected} == expected
    assert cfg.wait is False


# The least each command takes: what its config cannot default.
MINIMAL = {
    "preprocess": "m.csv",
    "extract-features": "p",
    "fuse": "f",
    "train": "d",
    "evaluate": "m d",
    "merge": "a b -o m",
    "predict": "m t",
}


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_flags_not_given_leave_the_defaults(name, built):
    model = getattr(config, STAGES[name].config)
    required = {f: v for f, v in CASES[name][1].items() if model.model_fields[f].is_required()}
    cfg = built(name, *MINIMAL[name].split())
    assert cfg == model(**required)
    if "wait" in STAGES[name].common:
        assert built(name, *MINIMAL[name].split(), "--wait").wait is True


def test_config_file_fills_in_and_flags_win(built, tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("epochs: 7\nseed: 9\nconv-channels: [8, 8]\n")
    cfg = built("train", "fused", "--seed", "1", "--config", str(path))
    assert (cfg.epochs, cfg.seed, cfg.conv_channels) == (7, 1, [8, 8])
