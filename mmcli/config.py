"""Typed configuration of every stage: defaults live here and only here.

A stage's config comes from, in order of precedence: flags given on the command
line, then ``--config FILE`` (YAML or TOML, keys spelled like the flags), then the
defaults below. Unknown keys and wrong types are errors, all reported at once.

Each field is also its command's option (``mmcli/cli/_stage.py`` reads them): the
``description`` is its help, the default (or a Literal's choices) is shown from the
field itself, and ``json_schema_extra`` says what the field name alone cannot:

- ``"argument": True``: a positional argument, not an option;
- ``"flags": [...]``: the option's spellings, when not just ``--field-name``;
- ``"metavar": "K/N"``: the placeholder shown for its value;
- ``"default_text": "..."``: what a None or empty default means, for the help;
- ``"config_only": True``: set in a ``--config`` file only, no flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mmcli.errors import MissingInputError, UsageError

ColumnType = Literal["image", "audio", "video", "text", "number", "category", "ignore"]

_ARGUMENT: dict[str, Any] = {"argument": True}
_OUT_FLAGS: dict[str, Any] = {"flags": ["--out", "-o"]}


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fields that name files or folders: recorded in the artifact but not part of its identity.
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: Fields that change speed, not results (worker counts): not part of the identity either.
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ("wait",)
    #: Wait for another run's lock on the output instead of failing at once (`--wait`,
    #: one of the options every command shares: mmcli/cli/_common.py).
    wait: bool = False

    def identity(self) -> dict[str, Any]:
        """The parameters that decide the output's content (paths and worker counts excluded)."""
        return self.model_dump(mode="json", exclude={*self.PATH_FIELDS, *self.RUNTIME_FIELDS})


class RowStageConfig(StageConfig):
    """A stage that maps over rows: worker processes, and shards for many machines."""

    RUNTIME_FIELDS = ("wait", "workers")
    workers: int | None = Field(
        None,
        ge=1,
        description="Worker processes for decoding and encoding; results do not depend on it.",
        json_schema_extra={"flags": ["--workers", "-j"], "default_text": "every core"},
    )
    shard: str | None = Field(
        None,
        pattern=r"^[0-9]+/[0-9]+$",
        description="Do only the K-th of N equal blocks of rows (for make -j, job arrays, "
        "several machines); join the N outputs with `mmcli merge`.",
        json_schema_extra={"metavar": "K/N"},
    )

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
    manifest: Path = Field(
        description="CSV, Parquet or JSONL table, one row per sample.",
        json_schema_extra=_ARGUMENT,
    )
    out: Path = Field(
        Path("prep"), description="Output artifact folder.", json_schema_extra=_OUT_FLAGS
    )
    target: str = Field("label", description="Target column.")
    task: Literal["auto", "classification", "regression"] = Field(
        "auto", description="What to predict; auto decides from the target column."
    )
    inputs: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="A column's type (image, audio, video, text, number, category, ignore); "
        "repeatable or comma-separated; overrides inference.",
        json_schema_extra={"flags": ["--input"], "metavar": "COLUMN:TYPE"},
    )
    id_column: str | None = Field(
        None,
        description="Column of sample ids (not a feature).",
        json_schema_extra={"default_text": "id, if present"},
    )
    data_root: Path | None = Field(
        None,
        description="Folder that relative paths resolve against and no path may leave.",
        json_schema_extra={"default_text": "the manifest's folder"},
    )
    image_size: int | None = Field(
        None,
        ge=8,
        le=1024,
        description="Images are resized to SIZE x SIZE.",
        json_schema_extra={"default_text": "the images' own size, at most 64"},
    )
    image_max_megapixels: float = Field(
        40.0,
        gt=0,
        le=89,
        description="Images over this many megapixels (from the header) are refused before "
        "decoding. At most 89, where Pillow's own bomb check starts.",
    )
    sample_rate: int | None = Field(
        None,
        ge=1000,
        le=192000,
        description="Audio is resampled to this rate in Hz.",
        json_schema_extra={"default_text": "the files' own rate, at most 16000"},
    )
    audio_seconds: float | None = Field(
        None,
        gt=0,
        le=600,
        description="Audio is trimmed or zero-padded to this length.",
        json_schema_extra={"default_text": "the longest clip, at most 2"},
    )
    audio_max_seconds: float = Field(
        600.0,
        gt=0,
        description="Audio files longer than this (from the header) are refused before decoding.",
    )
    # Budgets checked from a file's header before decoding it; a file over one is that
    # row's rejection. The defaults accept every ordinary file and refuse the few-MB
    # files whose headers declare gigabytes (mmcli/io/audio.py and video.py say why).
    audio_max_decoded_mb: float = Field(
        2000.0,
        gt=0,
        description="Audio files that decode to more than this many MB (frames x channels "
        "x 4 bytes, from the header) are refused before decoding. "
        "A 10-minute 48 kHz stereo file is 230 MB.",
    )
    text_max_chars: int = Field(
        200_000,
        ge=1,
        description="Text cells longer than this many characters (before or after "
        "Unicode normalisation) are refused: the row is rejected, never cut short. "
        "200,000 characters is about 40 pages.",
    )
    video_frames: int = Field(
        8,
        ge=1,
        le=256,
        description="Frames sampled uniformly over each video clip "
        "(a shorter clip repeats frames).",
    )
    video_max_seconds: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="Video clips longer than this are refused from their header, before decoding.",
    )
    video_max_decoded_megapixels: float = Field(
        80_000.0,
        gt=0,
        description="Video clips whose decoded frames add up to more than this many "
        "megapixels (width x height x frames decoded) are refused: from the header before "
        "decoding, and as soon as decoding passes it. A 2-minute 1080p clip at 60 fps is "
        "14,900.",
    )
    val_fraction: float = Field(0.15, ge=0, lt=1, description="Share of rows for validation.")
    test_fraction: float = Field(0.15, ge=0, lt=1, description="Share of rows for test.")
    seed: int = Field(0, description="Seed of the split.")
    on_error: Literal["skip", "fail", "keep"] = Field(
        "skip",
        description="A bad cell: skip the row (listed in rejected.parquet), fail at once, "
        "or keep the row with that value missing.",
    )
    max_errors: float | None = Field(
        None,
        ge=0,
        description="Fail (exit 3) when more rows are rejected than this: a count, "
        "or a fraction below 1.",
        json_schema_extra={"default_text": "no limit"},
    )

    @model_validator(mode="after")
    def _fractions(self) -> PreprocessConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave rows for training")
        return self


class ExtractConfig(RowStageConfig):
    PATH_FIELDS = ("prep", "out")
    prep: Path = Field(description="A preprocess artifact.", json_schema_extra=_ARGUMENT)
    out: Path = Field(
        Path("feats"), description="Output artifact folder.", json_schema_extra=_OUT_FLAGS
    )
    image: str = Field(
        "stats",
        description="Image encoder: stats, pixels or efficientnet-lite0 (pretrained extra; "
        "preprocess with --image-size 224). `mmcli encoders` lists them.",
    )
    audio: str = Field(
        "mfcc", description="Audio encoder: mfcc, logmel or resemblyzer (pretrained extra)."
    )
    text: str = Field(
        "tfidf", description="Text encoder: tfidf, hashing or minilm (pretrained extra)."
    )
    # One encoder each so far: no flag until there is a choice to make.
    number: str = Field(
        "standard", description="Number encoder.", json_schema_extra={"config_only": True}
    )
    category: str = Field(
        "onehot", description="Category encoder.", json_schema_extra={"config_only": True}
    )
    video: str = Field(
        "stats", description="Image encoder applied to every sampled frame of a video column."
    )
    video_pool: Literal["mean", "meanstd"] = Field(
        "meanstd", description="Frame features pooled over time: mean, or mean and std."
    )


class MergeConfig(StageConfig):
    PATH_FIELDS = ("shards", "out")
    shards: list[Path] = Field(
        min_length=1,
        description="The N shard artifacts of one preprocess or extract-features run.",
        json_schema_extra={"argument": True, "metavar": "SHARD..."},
    )
    out: Path = Field(description="Output artifact folder.", json_schema_extra=_OUT_FLAGS)


class FuseConfig(StageConfig):
    PATH_FIELDS = ("feats", "out")
    feats: Path = Field(description="An extract-features artifact.", json_schema_extra=_ARGUMENT)
    out: Path = Field(
        Path("fused"), description="Output artifact folder.", json_schema_extra=_OUT_FLAGS
    )
    method: Literal["concat", "weighted-sum"] = Field(
        "concat", description="How the columns' features are combined."
    )
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="Per-column weights, e.g. image=1,text=0.5; repeatable.",
        json_schema_extra={"default_text": "1 each", "metavar": "COLUMN=WEIGHT"},
    )
    scale: Literal["block", "feature"] = Field(
        "block",
        description="block: each column's block weighs alike whatever its width (features "
        "standardised, then the block scaled to unit norm; text kept sparse-aware); "
        "feature: every feature standardised alone.",
    )
    width: int = Field(
        64, ge=1, le=4096, description="Common width columns are projected to for weighted-sum."
    )
    seed: int = Field(0, description="Seed of the weighted-sum projections.")


class TrainConfig(StageConfig):
    PATH_FIELDS = ("data", "out")
    #: Fields that change how fast training runs, never its result (beyond float rounding).
    RUNTIME_FIELDS = ("wait", "workers", "device")
    data: Path = Field(
        description="A fuse artifact (heads, learned fusion over its blocks) "
        "or a preprocess artifact (--model e2e).",
        json_schema_extra=_ARGUMENT,
    )
    out: Path = Field(
        Path("model"), description="Output artifact folder.", json_schema_extra=_OUT_FLAGS
    )
    model: Literal["auto", "logistic", "mlp", "late", "e2e"] = Field(
        "auto",
        description="logistic, mlp, late (one linear model per column, their log-odds "
        "summed with learned weights) on a fuse artifact, or e2e (CNN/RNN towers on a "
        "preprocess artifact); auto: the best of logistic, late, mlp and their ensemble, "
        "on the val split or, under 500 val rows, by 5-fold cross-validation on train+val "
        "(on fuse), e2e (on preprocess).",
    )
    fusion: Literal["auto", "none", "concat", "weighted-sum", "gated", "attention"] = Field(
        "auto", description="Fusion inside the model; auto: none on fuse, concat for e2e."
    )
    hidden: int = Field(128, ge=1, description="Hidden width of the MLP head.")
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout of the MLP head.")
    width: int = Field(64, ge=1, description="Embedding width of each column tower.")
    conv_channels: list[int] = Field(
        default_factory=lambda: [16, 32, 64],
        min_length=1,
        description="Channels of each conv block of the image and audio CNNs; "
        "the count is the depth.",
    )
    rnn: Literal["gru", "lstm"] = Field("gru", description="Text tower cell.")
    rnn_hidden: int = Field(64, ge=1, description="Text RNN hidden size per direction.")
    embed_dim: int = Field(64, ge=1, description="Word embedding size.")
    text_max_len: int = Field(32, ge=1, description="Tokens kept per text.")
    #: One CNN shared by all frames, then a mean over time or a GRU.
    video_temporal: Literal["pool", "gru"] = Field(
        "pool",
        description="Video tower over its frames' CNN features: pool (mean over time) or gru.",
    )
    modality_dropout: float = Field(
        0.0, ge=0, lt=1, description="Drop each whole column with this probability in training."
    )
    epochs: int = Field(200, ge=1, description="At most this many epochs.")
    batch_size: int = Field(64, ge=1, description="Rows per step.")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")
    patience: int = Field(
        20, ge=1, description="Stop after this many epochs without a better val loss."
    )
    class_weight: Literal["none", "balanced"] = Field(
        "none", description="balanced: loss weights inversely proportional to class counts."
    )
    sampler: Literal["shuffle", "weighted"] = Field(
        "shuffle", description="weighted: draw rows so classes come equally often."
    )
    augment: Literal["auto", "none", "all", "minority"] = Field(
        "auto",
        description="Augment all rows, or minority (only classes below the median count): "
        "image flips/shifts/colour, audio gain/noise/masks, text token dropout; "
        "auto: all for e2e, none otherwise.",
    )
    loss: Literal["auto", "cross-entropy", "mse", "huber"] = Field(
        "auto",
        description="Regression loss; auto: mse (classification always uses cross-entropy).",
    )
    workers: int = Field(
        0,
        ge=0,
        description="Worker processes (in train: data loaders for --augment); results do "
        "not depend on it.",
        json_schema_extra={"flags": ["--workers", "-j"], "default_text": "0, none"},
    )
    #: Results agree up to float rounding whichever device runs.
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto",
        description="auto picks CUDA, then MPS, then the CPU. Under torchrun, "
        "training runs data-parallel over its processes.",
    )
    seed: int = Field(0, description="Seed of initialisation, shuffling and augmentation.")


class TuneConfig(StageConfig):
    PATH_FIELDS = ("data", "out", "base")
    RUNTIME_FIELDS = ("wait", "workers", "device")
    data: Path = Field(
        description="A fuse artifact (tunes the MLP head) or a preprocess artifact (e2e).",
        json_schema_extra=_ARGUMENT,
    )
    out: Path = Field(
        Path("tuned"), description="Output artifact folder.", json_schema_extra=_OUT_FLAGS
    )
    model: Literal["auto", "mlp", "e2e"] = Field(
        "auto", description="What is tuned; auto: mlp on a fuse artifact, e2e on a preprocess one."
    )
    fusion: Literal["auto", "none", "concat", "weighted-sum", "gated", "attention"] = Field(
        "auto",
        description="Fusion inside the model, fixed; auto: none for mlp, searched among "
        "concat, weighted-sum, gated and attention for e2e.",
    )
    trials: int = Field(20, ge=1, description="At most this many trials.")
    timeout: float | None = Field(
        None,
        gt=0,
        description="Start no trial after this many seconds (then the trial count, and so "
        "the result, depends on the machine's speed).",
        json_schema_extra={"metavar": "SECONDS", "default_text": "none"},
    )
    folds: int = Field(
        0,
        ge=0,
        description="Score each trial by K-fold cross-validation on the train+val rows "
        "(for small data); 0: on the val split.",
        json_schema_extra={"metavar": "K"},
    )
    params: list[str] = Field(
        default_factory=list,
        description="Tune only these parameters of the search space (comma-separated).",
        json_schema_extra={"metavar": "NAME,...", "default_text": "all of them"},
    )
    prune: Literal["median", "none"] = Field(
        "median",
        description="median: stop a trial early when its val score (by epoch, or by fold) "
        "falls below the median of earlier trials at that point; none: run every trial out.",
    )
    base: Path | None = Field(
        None,
        description="A train config file (YAML or TOML) every trial starts from; the "
        "tuned parameters override it.",
        json_schema_extra={"default_text": "train's defaults"},
    )
    workers: int = Field(
        0,
        ge=0,
        description="Data-loader processes inside each trial (for --augment); results do "
        "not depend on it.",
        json_schema_extra={"flags": ["--workers", "-j"], "default_text": "0, none"},
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="auto picks CUDA, then MPS, then the CPU."
    )
    seed: int = Field(0, description="Seed of the sampler and of every trial's training.")

    @model_validator(mode="after")
    def _check_folds(self) -> TuneConfig:
        if self.folds == 1:
            raise ValueError("folds 1: use 0 (the val split) or K >= 2")
        return self


class EvaluateConfig(StageConfig):
    PATH_FIELDS = ("model", "data", "out", "data_root")
    model: Path = Field(description="A train artifact.", json_schema_extra=_ARGUMENT)
    data: Path = Field(
        description="The artifact it was trained on (fuse, or preprocess for e2e models), "
        "or a new labelled table (CSV, TSV, Parquet, JSONL) run through the model's chain.",
        json_schema_extra=_ARGUMENT,
    )
    out: Path = Field(
        Path("eval"), description="Output artifact folder.", json_schema_extra=_OUT_FLAGS
    )
    split: Literal["train", "val", "test", "all"] = Field(
        "test", description="Which rows of an artifact are scored (a table: all of them)."
    )
    data_root: Path | None = Field(
        None,
        description="For a table: the folder its relative paths resolve against.",
        json_schema_extra={"default_text": "the table's folder"},
    )
    fail_under: list[str] = Field(
        default_factory=list,
        description="Exit with code 5 when METRIC is below VALUE "
        "(above, for mae/rmse/log_loss). Repeatable or comma-separated.",
        json_schema_extra={"metavar": "METRIC=VALUE"},
    )


class PredictConfig(StageConfig):
    PATH_FIELDS = ("model", "table", "out", "data_root")
    model: Path = Field(description="A train artifact.", json_schema_extra=_ARGUMENT)
    table: Path = Field(
        description="New rows: CSV, Parquet or JSONL with the training columns "
        "(the target may be absent).",
        json_schema_extra=_ARGUMENT,
    )
    out: Path = Field(
        Path("predictions.csv"),
        description="Predictions file; its extension picks CSV, Parquet or JSONL.",
        json_schema_extra=_OUT_FLAGS,
    )
    data_root: Path | None = Field(
        None,
        description="Folder that relative paths resolve against.",
        json_schema_extra={"default_text": "the table's folder"},
    )
    on_error: Literal["skip", "fail", "keep"] = Field(
        "skip",
        description="A bad cell: skip the row (its error is in the output), fail, "
        "or keep it with that value missing.",
    )


#: A config or pipeline file is a few hundred bytes; one over this is refused unread.
MAX_CONFIG_BYTES = 1 << 20


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or TOML file into a flat dict; keys may use dashes like the flags.

    YAML aliases (``*name``) are refused: a few of them nest into billions of values (the
    "billion laughs"), or into a loop, that hashing the parameters would walk.
    """
    if not path.is_file():
        raise MissingInputError(f"{path}: no such config file")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise UsageError(f"{path}: {size:,} bytes, over the {MAX_CONFIG_BYTES:,} a config holds")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml", ".json"):
            data = _load_yaml(text) or {}
        else:
            raise UsageError(f"{path}: config files are .yaml, .yml or .toml")
    except UsageError:
        raise
    except Exception as exc:  # the parsers' own error types differ; all mean "bad file"
        raise UsageError(f"{path}: cannot parse config: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a config file holds a mapping of keys to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _load_yaml(text: str) -> Any:
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"line {mark.line + 1}: YAML aliases (*name) are not allowed; "
                    "write the value out"
                )
            return super().compose_node(parent, index)

    loader = NoAliases(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def build(cls: type[StageConfig], flags: dict[str, Any], config_file: Path | None) -> Any:
    """Merge defaults < config file < flags (flags that are None were not given)."""
    values: dict[str, Any] = read_config_file(config_file) if config_file else {}
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return cls(**values)
    except ValidationError as exc:
        from mmcli.messages import problem

        keys = list(cls.model_fields)
        problems = [problem(err, keys) for err in exc.errors()]
        raise UsageError("invalid parameters: " + "; ".join(problems)) from None
