"""The typed shape of ``mmcli.json``: one model for the parts every record shares, one per
stage for what that stage adds.

Writers validate the record they are about to publish against these models, and readers
get the parsed model back from ``artifacts.load``, so a field is named in one place and a
record that does not fit (hand-edited, truncated, from another tool) is a clear "damaged
record" error naming the field, never a KeyError deep in a stage. README's "The record"
section shows an example that ``tests/artifacts/test_records.py`` loads through them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

#: The shape of mmcli.json. 2: paths (manifest, data root, upstream) relative to the
#: artifact's own folder, output names checked to stay inside it, typed fields.
FORMAT = 2

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
ColumnType = Literal["image", "audio", "video", "text", "number", "category", "ignore"]
Task = Literal["classification", "regression"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- what every record holds ----------------------------------------------------------
class OutputFile(_Model):
    """One file the artifact holds: its content hash and size."""

    sha256: Sha256
    bytes: int = Field(ge=0)


class ArtifactRef(_Model):
    """An input artifact: where it is (relative to this artifact's folder) and its content."""

    path: str
    fingerprint: Sha256
    stage: str | None = None


class FileRef(_Model):
    """An input file (the manifest): where it is, relative to the artifact, and its hash."""

    path: str
    sha256: Sha256


class FilesDigest(_Model):
    """The media files the manifest names: how many, and the hash of their (name, hash) list."""

    count: int = Field(ge=0)
    sha256: Sha256


class Inputs(_Model):
    """What the artifact was built from: its upstream artifact, or the manifest and media."""

    upstream: ArtifactRef | None = None
    model: ArtifactRef | None = None
    manifest: FileRef | None = None
    files: FilesDigest | None = None

    def roles(self) -> dict[str, ArtifactRef]:
        """The input artifacts by role (``upstream``, ``model``)."""
        return {
            role: ref for role, ref in (("upstream", self.upstream), ("model", self.model)) if ref
        }


class Shard(_Model):
    """Which part of the rows a shard artifact holds (``--shard INDEX/COUNT``)."""

    index: int = Field(ge=1)
    count: int = Field(ge=1)
    rows: tuple[int, int]


class Record(_Model):
    """The fields of every record, whatever the stage."""

    format: Literal[2]
    stage: str
    mmcli_version: str
    #: What decides a rebuild: mmcli version, stage, resolved parameters, input content.
    key: Sha256
    #: What downstream stages depend on: the hash of ``outputs``, nothing else.
    fingerprint: Sha256
    params: dict[str, Any]
    seed: int | None = None
    inputs: Inputs
    outputs: dict[str, OutputFile]
    summary: dict[str, Any] = {}
    libraries: dict[str, str] = {}
    shard: Shard | None = None


# -- the table every stage after preprocess carries ----------------------------------
class Column(_Model):
    """One manifest column: its type and whether it was inferred or given with --input.

    ``source`` names the video column a soundtrack column is decoded from (it has no cell
    in the manifest).
    """

    name: str
    type: ColumnType
    inferred: bool
    source: str | None = None


class Target(_Model):
    name: str
    task: Task
    classes: list[str] | None = None


class TableSchema(_Model):
    """Each column's role and type and the decoding parameters, decided by preprocess."""

    columns: list[Column]
    target: Target
    id_column: str | None = None
    split_column: str | None = None
    image_size: int
    sample_rate: int
    audio_seconds: float
    video_frames: int
    video_max_seconds: float
    #: Decoding budgets (--audio-max-decoded-mb, --video-max-decoded-megapixels). A record
    #: written before they existed gets today's defaults (those of mmcli.config).
    audio_max_decoded_mb: float = 2000.0
    image_max_megapixels: float = 40.0
    audio_max_seconds: float = 600.0
    #: --text-max-chars (a record written before it existed gets today's default).
    text_max_chars: int = 200_000
    video_max_decoded_megapixels: float = 80_000.0
    #: Media column -> its array file in the preprocess artifact.
    arrays: dict[str, str] = {}

    def input_columns(self) -> list[Column]:
        """The columns that feed the model, in manifest order (a video's soundtrack after it)."""
        return [c for c in self.columns if c.type != "ignore"]

    def manifest_columns(self) -> list[Column]:
        """The input columns that have a cell in the manifest (not those derived from another)."""
        return [c for c in self.input_columns() if not c.source]


class Paths(_Model):
    #: The folder media paths in the manifest are resolved against, relative to the artifact.
    data_root: str


class _Tabled(Record):
    table: TableSchema = Field(alias="schema")


# -- one model per stage --------------------------------------------------------------
class PreprocessRecord(_Tabled):
    stage: Literal["preprocess"]
    paths: Paths


class FeatureColumn(_Model):
    """One input column's features: its encoder, width, feature array and fitted state."""

    name: str
    type: ColumnType
    encoder: str
    dim: int = Field(ge=0)
    features: str
    state: str
    #: The encoder's fitted arrays (safetensors), for encoders that have any.
    arrays: str | None = None


class ExtractRecord(_Tabled):
    stage: Literal["extract-features"]
    columns: list[FeatureColumn]
    #: Per column, what its features depend on (lets a rebuild link an unchanged column).
    column_keys: dict[str, Sha256] = {}

    def column(self, name: str) -> FeatureColumn | None:
        return next((c for c in self.columns if c.name == name), None)


class Block(_Model):
    """Columns ``start:stop`` of the fused matrix come from input column ``name``."""

    name: str
    type: str
    start: int = Field(ge=0)
    stop: int = Field(ge=0)


class FuseRecord(_Tabled):
    stage: Literal["fuse"]
    blocks: list[Block]
    weights: dict[str, float]
    columns: list[str]

    @property
    def method(self) -> str:
        return str(self.params["method"])


class TargetScale(_Model):
    """A regression target is learnt standardised; predictions are scaled back."""

    mean: float
    std: float


class TrainRecord(_Tabled):
    stage: Literal["train"]
    #: What ``models.build_model`` rebuilds the network from (family, sizes, towers).
    architecture: dict[str, Any]
    task: Task
    classes: list[str] | None = None
    target_scale: TargetScale
    best_epoch: int | None = None
    #: ``--model auto``: every candidate tried, its parameters and val score, and which won.
    candidates: list[dict[str, Any]] | None = None


class EvaluateRecord(Record):
    stage: Literal["evaluate"]
    #: Scored on a new table (``evaluate MODEL TABLE``): the schema it was decoded with and
    #: its data folder, so that ``status`` sees a changed table or media file.
    table: TableSchema | None = Field(None, alias="schema")
    paths: Paths | None = None


class TuneRecord(Record):
    stage: Literal["tune"]
    #: Each tuned parameter and its range, as the trials saw it.
    space: dict[str, str]
    #: The ``--base`` file's train parameters every trial started from.
    base: dict[str, Any] = {}
    #: The best trial: its number, score and whole train config (``best.yaml``).
    best: dict[str, Any]


AnyRecord = Annotated[
    PreprocessRecord | ExtractRecord | FuseRecord | TrainRecord | EvaluateRecord | TuneRecord,
    Field(discriminator="stage"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyRecord)
STAGES = ("preprocess", "extract-features", "fuse", "train", "evaluate", "tune")


class RecordError(ValueError):
    """A record that does not fit the models: what is wrong, where."""


def parse(raw: Any) -> Record:
    """The typed record, or RecordError naming the first field that does not fit."""
    try:
        return _ADAPTER.validate_python(raw)  # type: ignore[no-any-return]
    except ValidationError as exc:
        from mmcli.messages import problem

        first = dict(exc.errors()[0])
        loc = list(first["loc"])
        if loc and loc[0] in STAGES:  # the union's tag, not a field of the record
            loc = loc[1:]
        first["loc"] = loc or ["the record"]
        raise RecordError(problem(first, dashes=False)) from None


def dump(record: Record) -> dict[str, Any]:
    """The record as the JSON object written to mmcli.json (fields left empty are left out)."""
    return record.model_dump(mode="json", by_alias=True, exclude_none=True)
