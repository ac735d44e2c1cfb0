"""Column types: inferred from the manifest's values, always overridable with --input COL:TYPE."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmcli.artifacts.records import Column, TableSchema, Target
from mmcli.config import PreprocessConfig
from mmcli.errors import DataError, UsageError
from mmcli.io.sniff import file_kind
from mmcli.stages.sizes import stored_sizes

if TYPE_CHECKING:
    import pandas as pd

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
AUDIO_EXT = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus"}
VIDEO_EXT = {".mp4", ".webm", ".avi", ".mkv", ".mov"}
SPLIT_COLUMN = "split"
SPLIT_NAMES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}
# Missing-value spellings accepted in number columns (in text and path columns they are data).
NUMBER_NA = {"", "na", "nan", "n/a", "null", "none"}
#: Features and models compute in float32: a number past its largest value (about 3.4e38)
#: cannot reach them, and one near it overflows the statistics of every stage after.
NUMBER_MAX = 3.4028234663852886e38


class NumberOutOfRange(ValueError):
    """A cell that is a number but not one a model can take (inf, NaN text, past float32):
    that row's problem, while the column stays a number column."""


def parse_number(value: Any) -> float | None:
    """A finite float within float32's range, None for missing; ValueError with a reason
    otherwise (``NumberOutOfRange`` for a number no model can take)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer past any float (JSON, Parquet decimals)
            digits = int(value.bit_length() * 0.30103)  # str() of it may be refused too
            raise NumberOutOfRange(f"an integer of {digits} digits is {_BEYOND}") from None
    else:
        text = str(value).strip()
        if text.lower() in NUMBER_NA:
            return None
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if math.isinf(number) and "inf" not in text.lower():  # 1e999: too many digits
            raise NumberOutOfRange(f"{_shown(text)} is {_BEYOND}")
    if math.isnan(number) and not isinstance(value, str):
        return None  # a real NaN from Parquet/JSON is a missing value
    if not math.isfinite(number):
        raise NumberOutOfRange(f"{_shown(value)} is not a finite number")
    if abs(number) > NUMBER_MAX:
        raise NumberOutOfRange(f"{_shown(value)} is {_BEYOND}")
    return number


_BEYOND = "beyond float32's range (±3.4e38), which models use"


def _shown(value: Any) -> str:
    """A cell as a reason quotes it: repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_number(value: Any) -> bool:
    """Whether a cell is a number, for telling a column's type (one out of range is)."""
    try:
        return parse_number(value) is not None
    except NumberOutOfRange:
        return True
    except ValueError:
        return False


def _number_or_none(value: Any) -> float | None:
    try:
        return parse_number(value)
    except ValueError:
        return None


def _suffix(path: str) -> str:
    """Lower-case extension of a path's last part (as os.path.splitext, without its cost)."""
    dot = path.rfind(".")
    start = max(path.rfind("/"), path.rfind("\\")) + 1
    return path[dot:].lower() if dot > start and path[start:dot].strip(".") else ""


def infer_type(values: list[Any]) -> str:
    """Guess a column's type from its non-missing values."""
    present = [v for v in values if v is not None]
    if not present:
        return "ignore"
    strings = [str(v) for v in present]
    distinct = set(strings)
    suffixes = Counter(_suffix(s) for s in distinct)
    for exts, kind in ((IMAGE_EXT, "image"), (AUDIO_EXT, "audio"), (VIDEO_EXT, "video")):
        if sum(n for suffix, n in suffixes.items() if suffix in exts) >= 0.9 * len(distinct):
            return kind
    # Mostly numbers: a number column with a few bad cells (those rows are reported). The
    # count stops once more than 5% are not numbers: a text column is known in a few cells.
    misses = 0
    for value in present:
        misses += not is_number(value)
        if misses > 0.05 * len(present):
            break
    else:
        return "number"
    unique = len(distinct)
    words = sum(len(s.split()) for s in strings) / len(strings)
    if unique == len(strings) and len(strings) > 20 and words <= 1:
        return "ignore"  # every value different and one token: an identifier, not a feature
    if words <= 3 and unique <= max(2, len(strings) // 2) and unique <= 100:
        return "category"
    return "text"


#: Integer labels with at most this many distinct values are classes; more are a number.
MAX_INTEGER_CLASSES = 20


def infer_task(values: list[Any]) -> tuple[str, str]:
    """The task a target's values suggest, and the rule that decided it, as said to the
    user with the flag that overrides it."""
    present = [v for v in values if v is not None]
    if present and all(is_number(v) for v in present):
        numbers = {_number_or_none(v) for v in present} - {None}
        if all(float(n).is_integer() for n in numbers):  # type: ignore[arg-type]
            if len(numbers) <= MAX_INTEGER_CLASSES:
                return "classification", (
                    f"{len(numbers)} distinct integer values (at most {MAX_INTEGER_CLASSES} "
                    "make classes); --task regression predicts them as numbers"
                )
            return "regression", (
                f"{len(numbers)} distinct integer values (over the {MAX_INTEGER_CLASSES} "
                "that make classes); --task classification treats them as classes"
            )
        return "regression", "numbers with fractions; --task classification treats them as classes"
    return "classification", "labels that are not all numbers"


def class_names(values: list[Any]) -> list[str]:
    """Sorted class names; numerically when every label is a number (2 before 10)."""
    names = sorted({_label(v) for v in values if v is not None})
    if names and all(is_number(n) for n in names):
        names.sort(key=lambda n: float(n))
    return names


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def label_of(value: Any) -> str:
    """The class name a target cell stands for."""
    return _label(value)


@dataclass
class Inferred:
    """What ``infer_schema`` decided, and what the user should hear about it."""

    schema: TableSchema
    #: How --task auto chose the task (None when --task was given).
    task_rule: str | None = None
    #: Decisions a user may not expect, each with the flag that changes it.
    warnings: list[str] = field(default_factory=list)


def infer_schema(df: pd.DataFrame, cfg: PreprocessConfig, root: Path | None = None) -> Inferred:
    """Decide each column's role and type; the schema is stored in the artifact.

    ``root`` (the data folder) lets a column of paths without extensions be known by
    its files' first bytes."""
    columns = list(df.columns)
    # A video's soundtrack column may be named too (only to ignore it); checked below.
    unknown = sorted(
        n
        for n in set(cfg.inputs) - set(columns)
        if not n.endswith(".audio") or n[:-6] not in columns
    )
    if unknown:
        raise UsageError(
            f"--input names columns not in the manifest: {unknown}",
            hint=f"the manifest has: {columns}",
        )
    if cfg.target not in columns:
        raise DataError(
            f"{cfg.manifest}: no target column {cfg.target!r}",
            hint=f"name it with --target; the manifest has: {columns}",
        )
    id_column = cfg.id_column or ("id" if "id" in columns else None)
    if id_column and id_column not in columns:
        raise UsageError(f"--id-column {id_column!r} is not in the manifest")
    if id_column == cfg.target:
        raise DataError(
            f"{cfg.manifest}: the target {cfg.target!r} is the id column: ids name rows, "
            "they are no label to learn",
            hint=f"name the label column with --target; the manifest has: {columns}",
        )
    split_column = SPLIT_COLUMN if SPLIT_COLUMN in columns else None
    target_values = df[cfg.target].tolist()
    inferred = Inferred(schema=None)  # type: ignore[arg-type]  # set below
    task = cfg.task
    if task == "auto":
        task, inferred.task_rule = infer_task(target_values)
        if task == "regression" and "integer" in inferred.task_rule:
            inferred.warnings.append(
                f"target {cfg.target!r} is predicted as a number: " + inferred.task_rule
            )
    classes = class_names(target_values) if task == "classification" else None
    if classes is not None and len(classes) < 2:
        raise DataError(f"{cfg.manifest}: target {cfg.target!r} has fewer than 2 classes")
    specs = []
    for name in columns:
        if name in (cfg.target, id_column, split_column):
            continue
        given = cfg.inputs.get(name)
        kind = given or infer_type(df[name].tolist())
        if not given and kind in ("ignore", "text", "category"):
            kind = _files_by_content(name, df[name].tolist(), kind, root, inferred.warnings)
        specs.append(Column(name=name, type=kind, inferred=given is None))
        if kind == "video":
            specs.append(_soundtrack(name, columns, cfg.inputs))
    stray = sorted(set(cfg.inputs) - set(columns) - {s.name for s in specs})
    if stray:
        raise UsageError(
            f"--input names columns that are not video soundtracks: {stray}",
            hint="COLUMN.audio exists only when COLUMN is a video column",
        )
    if all(s.type == "ignore" for s in specs):
        raise DataError(
            f"{cfg.manifest}: no input columns besides the target",
            hint="declare them with --input COLUMN:TYPE",
        )
    sizes = stored_sizes(df, specs, cfg, root)
    inferred.schema = TableSchema(
        columns=specs,
        target=Target(name=cfg.target, task=task, classes=classes),
        id_column=id_column,
        split_column=split_column,
        image_size=sizes.image_size,
        sample_rate=sizes.sample_rate,
        audio_seconds=sizes.audio_seconds,
        video_frames=cfg.video_frames,
        video_max_seconds=cfg.video_max_seconds,
        audio_max_decoded_mb=cfg.audio_max_decoded_mb,
        text_max_chars=cfg.text_max_chars,
        image_max_megapixels=cfg.image_max_megapixels,
        audio_max_seconds=cfg.audio_max_seconds,
        video_max_decoded_megapixels=cfg.video_max_decoded_megapixels,
    )
    return inferred


#: Files read to tell a column of paths without extensions by content.
SNIFF_FILES = 8


def _files_by_content(
    name: str, values: list[Any], kind: str, root: Path | None, warnings: list[str]
) -> str:
    """``kind``, unless the column's cells are paths of media files without an extension:
    then the kind their first bytes show, said in ``warnings``. A column of one-token cells
    that look like paths but name no file there is kept as ``kind``, with a warning."""
    cells = [str(v) for v in values if v is not None and str(v).strip()]
    looks_like_paths = bool(cells) and all(
        len(c) < 4096 and not any(ch.isspace() for ch in c) and not _suffix(c) for c in cells[:50]
    )
    if not looks_like_paths:
        return kind
    sample = list(dict.fromkeys(cells))[:SNIFF_FILES]
    found = Counter(file_kind(c, root) for c in sample) if root is not None else Counter()
    media = [(k, n) for k, n in found.most_common() if k is not None]
    if media and media[0][1] == len(sample):
        found_kind = media[0][0]
        warnings.append(
            f"column {name!r} holds {found_kind} files, known by their content (the paths "
            f"have no extension); --input {name}:{kind} if it is not"
        )
        return found_kind
    if any("/" in c or "\\" in c for c in sample):
        seen = f"only {media[0][1]}" if media else "none"
        warnings.append(
            f"column {name!r} looks like file paths without an extension, but {seen} of "
            f"the first {len(sample)} name media files in the data folder: used as "
            f"{_AS[kind]}; --input {name}:image (or audio, video) if they are files"
        )
    return kind


_AS = {"ignore": "an identifier (ignored)", "text": "text", "category": "a category"}


def _soundtrack(video: str, columns: list[str], given: dict[str, str]) -> Column:
    """A video column's soundtrack: an audio column of its own, decoded from the clip.

    Every later stage treats it as any audio column (its own presence flag, array,
    encoder and tower); ``source`` says it has no cell in the manifest.
    ``--input <video>.audio:ignore`` leaves it out.
    """
    name = f"{video}.audio"
    if name in columns:
        raise UsageError(
            f"column {name!r} clashes with the soundtrack of video column {video!r}",
            hint="rename one of them",
        )
    kind = given.get(name, "audio")
    if kind not in ("audio", "ignore"):
        raise UsageError(f"--input {name}:{kind}: a soundtrack is audio, or ignore to drop it")
    return Column(name=name, type=kind, source=video, inferred=name not in given)


def column_slugs(schema: TableSchema) -> dict[str, str]:
    """Input column -> a unique, file-name-safe stem for the files that hold its data."""
    slugs: dict[str, str] = {}
    taken: set[str] = set()
    for i, col in enumerate(schema.input_columns()):
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", col.name).strip(".") or "column"
        slugs[col.name] = slug if slug not in taken else f"{slug}-{i}"
        taken.add(slugs[col.name])
    return slugs
