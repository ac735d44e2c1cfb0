"""The mmcli.json record: what an artifact is, what made it, and its content fingerprint."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mmcli import __version__
from mmcli.artifacts.hashing import json_sha256
from mmcli.errors import MissingInputError, UsageError

RECORD_NAME = "mmcli.json"
FORMAT = 1
_LIBRARIES = (
    "torch",
    "numpy",
    "pandas",
    "pyarrow",
    "librosa",
    "pillow",
    "scikit-learn",
    "soundfile",
    "safetensors",
    "av",
)


@dataclass(frozen=True)
class Artifact:
    """A valid artifact on disk: its folder and its parsed record."""

    path: Path
    record: dict[str, Any]

    @property
    def stage(self) -> str:
        return str(self.record["stage"])

    @property
    def fingerprint(self) -> str:
        return str(self.record["fingerprint"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.record.get("params", {}))

    def file(self, name: str) -> Path:
        """Path of one of the artifact's recorded output files, checked against its record."""
        info = self.record.get("outputs", {}).get(name)
        if info is None:
            raise MissingInputError(
                f"{self.path}: artifact has no file {name!r}", hint="rebuild it with --force"
            )
        path = self.path / name
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        if size != info["bytes"]:
            raise MissingInputError(
                f"{path}: missing or changed since the artifact was written",
                hint="rebuild it with --force (`mmcli status` checks every file)",
            )
        return path

    def array(self, name: str, mmap: bool = False) -> Any:
        """A ``.npy`` output, never unpickled; a damaged file is a clear error."""
        import numpy as np

        try:
            return np.load(self.file(name), mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise MissingInputError(
                f"{self.path / name}: unreadable array ({exc})", hint="rebuild it with --force"
            ) from None

    def array_file(self, name: str) -> Path:
        """Path of a ``.npy`` output checked to hold numbers (read later a block at a time)."""
        from mmcli.artifacts import arrays

        path = self.file(name)
        try:
            arrays.row_count(path)
        except (ValueError, OSError, EOFError) as exc:
            raise MissingInputError(
                f"{self.path / name}: unreadable array ({exc})", hint="rebuild it with --force"
            ) from None
        return path

    def table(self, name: str) -> Any:
        """A Parquet output as a DataFrame; a damaged file is a clear error."""
        import pandas as pd

        try:
            return pd.read_parquet(self.file(name))
        except (ValueError, OSError) as exc:  # pyarrow's errors derive from these
            raise MissingInputError(
                f"{self.path / name}: unreadable table ({exc})", hint="rebuild it with --force"
            ) from None

    def tensors(self, name: str) -> dict[str, Any]:
        """A safetensors output as numpy arrays; a damaged file is a clear error."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return load_file(str(self.file(name)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise MissingInputError(
                f"{self.path / name}: unreadable tensors ({exc})", hint="rebuild it with --force"
            ) from None

    def upstream(self) -> Artifact:
        """The artifact this one was built from (resolved relative to this folder)."""
        up = self.record.get("inputs", {}).get("upstream")
        if not up:
            raise MissingInputError(
                f"{self.path}: a {self.stage} artifact has no upstream artifact"
            )
        path = (self.path / up["path"]).resolve()
        art = load(path)
        if art.fingerprint != up["fingerprint"]:
            raise MissingInputError(
                f"{self.path}: its upstream {path} changed since it was built",
                hint=f"rerun `mmcli {self.stage}` to bring it up to date",
            )
        return art

    def chain(self) -> list[Artifact]:
        """This artifact and every upstream one, back to the preprocess artifact."""
        arts = [self]
        while arts[-1].record.get("inputs", {}).get("upstream"):
            arts.append(arts[-1].upstream())
        return arts

    def find(self, stage: str) -> Artifact:
        """The nearest artifact of ``stage`` in this one's chain (itself included)."""
        for art in self.chain():
            if art.stage == stage:
                return art
        raise MissingInputError(f"{self.path}: no {stage} artifact in its chain")


def load(
    path: str | Path, stages: tuple[str, ...] | None = None, shards_ok: bool = False
) -> Artifact:
    """Load a valid artifact, or fail with a clear message (missing, incomplete, wrong stage).

    A stage that asks for given ``stages`` gets whole artifacts only: a shard is refused
    with the command that joins it to its siblings.
    """
    path = Path(path)
    record_path = path / RECORD_NAME
    if not path.exists():
        raise MissingInputError(f"{path}: no such artifact")
    if not record_path.is_file():
        raise MissingInputError(
            f"{path}: not a valid mmcli artifact (no {RECORD_NAME}: incomplete, or not mmcli's)"
        )
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        record["stage"], record["fingerprint"]  # noqa: B018 - required keys
    except (ValueError, KeyError, TypeError) as exc:
        raise MissingInputError(f"{record_path}: unreadable record ({exc})") from None
    if stages and record["stage"] not in stages:
        raise MissingInputError(
            f"{path}: is a {record['stage']} artifact, expected {' or '.join(stages)}"
        )
    if stages and record.get("shard") and not shards_ok:
        shard = record["shard"]
        raise UsageError(
            f"{path}: is shard {shard['index']}/{shard['count']} of a {record['stage']} run, "
            "not a whole artifact",
            hint=f"join the {shard['count']} shards first: mmcli merge SHARD... --out DIR",
        )
    return Artifact(path, record)


def cache_key(stage: str, params: dict[str, Any], inputs: dict[str, Any]) -> str:
    """What decides whether a stage must rerun: version, stage, parameters, input content."""
    return json_sha256({"mmcli": __version__, "stage": stage, "params": params, "inputs": inputs})


def library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def relative_to(target: Path, start: Path) -> str:
    """Path of ``target`` as seen from the folder ``start`` (so chains survive moving a tree)."""
    return os.path.relpath(Path(target).resolve(), Path(start).resolve())
