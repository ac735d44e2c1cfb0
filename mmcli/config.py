"""Typed configuration of every stage: defaults live here and only here.

A stage's config comes from, in order of precedence: flags given on the command
line, then ``--config FILE`` (YAML or TOML, keys spelled like the flags), then the
defaults below. Unknown keys and wrong types are errors, all reported at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mmcli.errors import MissingInputError, UsageError

ColumnType = Literal["image", "audio", "video", "text", "number", "category", "ignore"]


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fields that name files or folders: recorded in the artifact but not part of its identity.
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: Fields that change speed, not results (worker counts): not part of the identity either.
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ("wait",)
    #: Wait for another run's lock on the output instead of failing at once.
    wait: bool = False

    def identity(self) -> dict[str, Any]:
        """The parameters that decide the output's content (paths and worker counts excluded)."""
        return self.model_dump(mode="json", exclude={*self.PATH_FIELDS, *self.RUNTIME_FIELDS})


class RowStageConfig(StageConfig):
    """A stage that maps over rows: worker processes, and shards for many machines."""

    RUNTIME_FIELDS = ("wait", "workers")
    #: Worker processes for decoding and encoding; None (the default) uses every core.
    workers: int | None = Field(None, ge=1)
    #: "K/N": do only the K-th of N equal blocks of rows; `mmcli merge` joins the shards.
    shard: str | None = Field(None, pattern=r"^[0-9]+/[0-9]+$")

    @model_validator(mode="after")
    def _check_shard(self) -> RowStageConfig:
        if self.shard is not None:
            k, n = self.shard_numbers() or (0, 0)
            if not 1 <= k <= n:
                raise ValueError(f"shard {self.shard!r}: K/N needs 1 <= K <= N")
        return self

    def shard_numbers(self) -> tuple[int, int] | None:
        if self.shard is None:
            return None
        k, n = self.shard.split("/")
        return int(k), int(n)


class PreprocessConfig(RowStageConfig):
    PATH_FIELDS = ("manifest", "out", "data_root")
    manifest: Path
    out: Path = Path("prep")
    target: str = "label"
    task: Literal["auto", "classification", "regression"] = "auto"
    inputs: dict[str, ColumnType] = Field(default_factory=dict)
    id_column: str | None = None
    data_root: Path | None = None
    image_size: int = Field(64, ge=8, le=1024)
    sample_rate: int = Field(16000, ge=1000, le=192000)
    audio_seconds: float = Field(2.0, gt=0, le=600)
    #: Frames sampled uniformly over each video clip (a short clip repeats frames).
    video_frames: int = Field(8, ge=1, le=256)
    #: Longer clips are refused from their header, before any decoding.
    video_max_seconds: float = Field(120.0, gt=0, le=3600)
    val_fraction: float = Field(0.15, ge=0, lt=1)
    test_fraction: float = Field(0.15, ge=0, lt=1)
    seed: int = 0
    on_error: Literal["skip", "fail", "keep"] = "skip"
    #: Fail when more rows than this are rejected: a count (>= 1) or a fraction (< 1).
    max_errors: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _fractions(self) -> PreprocessConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave rows for training")
        return self


class ExtractConfig(RowStageConfig):
    PATH_FIELDS = ("prep", "out")
    prep: Path
    out: Path = Path("feats")
    image: str = "stats"
    audio: str = "mfcc"
    text: str = "tfidf"
    number: str = "standard"
    category: str = "onehot"
    #: The image encoder applied to every sampled frame of a video column.
    video: str = "stats"
    #: How frame features are pooled over time: mean, or mean and std side by side.
    video_pool: Literal["mean", "meanstd"] = "meanstd"


class MergeConfig(StageConfig):
    PATH_FIELDS = ("shards", "out")
    shards: list[Path] = Field(min_length=1)
    out: Path


class FuseConfig(StageConfig):
    PATH_FIELDS = ("feats", "out")
    feats: Path
    out: Path = Path("fused")
    method: Literal["concat", "weighted-sum"] = "concat"
    weights: dict[str, float] = Field(default_factory=dict)
    width: int = Field(64, ge=1, le=4096)
    seed: int = 0


class TrainConfig(StageConfig):
    PATH_FIELDS = ("data", "out")
    #: Fields that change how fast training runs, never its result (beyond float rounding).
    RUNTIME_FIELDS = ("wait", "workers", "device")
    data: Path
    out: Path = Path("model")
    model: Literal["auto", "logistic", "mlp", "e2e"] = "auto"
    fusion: Literal["auto", "none", "concat", "weighted-sum", "gated", "attention"] = "auto"
    hidden: int = Field(128, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    width: int = Field(64, ge=1)
    conv_channels: list[int] = Field(default_factory=lambda: [16, 32, 64], min_length=1)
    rnn: Literal["gru", "lstm"] = "gru"
    rnn_hidden: int = Field(64, ge=1)
    embed_dim: int = Field(64, ge=1)
    text_max_len: int = Field(32, ge=1)
    #: Video frames: one CNN shared by all frames, then a mean over time or a GRU.
    video_temporal: Literal["pool", "gru"] = "pool"
    modality_dropout: float = Field(0.0, ge=0, lt=1)
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(20, ge=1)
    class_weight: Literal["none", "balanced"] = "none"
    sampler: Literal["shuffle", "weighted"] = "shuffle"
    augment: Literal["none", "all", "minority"] = "none"
    loss: Literal["auto", "cross-entropy", "mse", "huber"] = "auto"
    workers: int = Field(0, ge=0)
    #: auto picks CUDA, then MPS, then the CPU; results agree up to float rounding.
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    seed: int = 0


class EvaluateConfig(StageConfig):
    PATH_FIELDS = ("model", "data", "out")
    model: Path
    data: Path
    out: Path = Path("eval")
    split: Literal["train", "val", "test", "all"] = "test"
    fail_under: list[str] = Field(default_factory=list)


class PredictConfig(StageConfig):
    PATH_FIELDS = ("model", "table", "out", "data_root")
    model: Path
    table: Path
    out: Path = Path("predictions.csv")
    data_root: Path | None = None
    on_error: Literal["skip", "fail", "keep"] = "skip"


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or TOML file into a flat dict; keys may use dashes like the flags."""
    if not path.is_file():
        raise MissingInputError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml", ".json"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise UsageError(f"{path}: config files are .yaml, .yml or .toml")
    except UsageError:
        raise
    except Exception as exc:  # the parsers' own error types differ; all mean "bad file"
        raise UsageError(f"{path}: cannot parse config: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a config file holds a mapping of keys to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def build(cls: type[StageConfig], flags: dict[str, Any], config_file: Path | None) -> Any:
    """Merge defaults < config file < flags (flags that are None were not given)."""
    values: dict[str, Any] = read_config_file(config_file) if config_file else {}
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return cls(**values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "config"
            got = (
                ""
                if err["type"] == "missing"
                else f" (got {json.dumps(err.get('input'), default=str)})"
            )
            problems.append(f"{where.replace('_', '-')}: {err['msg']}{got}")
        raise UsageError("invalid parameters: " + "; ".join(problems)) from None
