"""The mmcli.json record: what an artifact is, what made it, and its content fingerprint."""

from __future__ import annotations

import atexit
import functools
import json
import os
import stat
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mmcli import __version__
from mmcli.artifacts.hashing import json_sha256
from mmcli.artifacts.locks import hold_shared
from mmcli.artifacts.records import FORMAT, Record, RecordError, parse
from mmcli.errors import MissingInputError, UsageError

RECORD_NAME = "mmcli.json"
#: How many artifacts a chain may hold before it is taken for a damaged record.
MAX_CHAIN = 32
#: A record is read whole: one over this size is damaged or crafted (a record lists one
#: line per output file; 100,000 files make about 15 MB).
MAX_RECORD_BYTES = 64 << 20
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
    """A valid artifact on disk: its folder and its typed record (``records``)."""

    path: Path
    record: Any  # a records.Record subclass: the stage's own fields are typed there

    @property
    def stage(self) -> str:
        return str(self.record.stage)

    @property
    def fingerprint(self) -> str:
        return str(self.record.fingerprint)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.record.params)

    def file(self, name: str) -> Path:
        """Path of one of the artifact's recorded output files, its content checked.

        Only a regular file inside the artifact folder is ever opened (no link, FIFO or
        device, nothing outside), and its SHA-256 must be the recorded one: a file changed
        in place, even keeping its size, is refused.
        """
        info = self.record.outputs.get(name)
        if info is None or not safe_name(name):
            raise MissingInputError(
                f"{self.path}: artifact has no file {name!r}", hint="rebuild it with --force"
            )
        problem = verify(self.path, name, info.sha256)
        if problem:
            raise MissingInputError(
                f"{self.path / name}: {problem}",
                hint="rebuild it with --force (`mmcli status` checks every file)",
            )
        return self.path / name

    def damaged(self) -> list[str]:
        """The recorded output files that are missing or not what was written."""
        return [
            name
            for name, info in self.record.outputs.items()
            if verify(self.path, name, info.sha256)
        ]

    def resolve(self, relative: str) -> Path:
        """A path the record holds relative to this artifact's folder, as the user sees it."""
        return Path(os.path.normpath(self.path / relative))

    def array(
        self,
        name: str,
        mmap: bool = False,
        shape: tuple[int, ...] | None = None,
        dtype: str | None = None,
    ) -> Any:
        """A ``.npy`` output, never unpickled, its header checked (``array_file``); a
        damaged file is a clear error."""
        import numpy as np

        path = self.array_file(name, shape, dtype)
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise MissingInputError(
                f"{self.path / name}: unreadable array ({exc})", hint="rebuild it with --force"
            ) from None

    def array_file(
        self, name: str, shape: tuple[int, ...] | None = None, dtype: str | None = None
    ) -> Path:
        """Path of a ``.npy`` output whose header is what the record says (read later a
        block at a time): numbers, row-major, held whole by the file, one row per row of
        the artifact's ``rows.parquet``, and rows of ``shape`` and ``dtype``: those given,
        else those the record gives (a feature column's width, the fused width).

        A header forged to match a forged content hash is still refused here, before a
        stage reads rows past the end, mixes up rows or takes bytes for other numbers.
        """
        from mmcli.artifacts import arrays

        path = self.file(name)
        try:
            found_shape, found_dtype = arrays.layout(path)
        except (ValueError, OSError, EOFError) as exc:
            raise MissingInputError(
                f"{self.path / name}: unreadable array ({exc})", hint="rebuild it with --force"
            ) from None
        recorded_shape, recorded_dtype = self._recorded_layout(name)
        problem = arrays.mismatch(
            found_shape,
            found_dtype,
            rows=self.row_count,
            row_shape=shape if shape is not None else recorded_shape,
            want_dtype=dtype or recorded_dtype,
        )
        if problem:
            raise MissingInputError(
                f"{self.path / name}: damaged artifact: the array holds {problem}",
                hint="rebuild it with --force",
            )
        return path

    @functools.cached_property
    def row_count(self) -> int | None:
        """Rows of the artifact's ``rows.parquet`` (from its footer), None if it has none;
        read once per loaded artifact (a wide table's footer is big)."""
        if "rows.parquet" not in self.record.outputs:
            return None
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(self.file("rows.parquet")).metadata.num_rows)
        except (ValueError, OSError) as exc:  # pyarrow's errors derive from these
            raise MissingInputError(
                f"{self.path / 'rows.parquet'}: unreadable table ({exc})",
                hint="rebuild it with --force",
            ) from None

    def _recorded_layout(self, name: str) -> tuple[tuple[int, ...] | None, str | None]:
        """(row shape, dtype) the record gives for array ``name``: a feature column's
        (dim,) and the fused matrix's (width,), both float32; (None, None) otherwise."""
        from mmcli.artifacts.records import ExtractRecord, FuseRecord

        record = self.record
        if isinstance(record, ExtractRecord):
            for column in record.columns:
                if column.features == name:
                    return (column.dim,), "float32"
        if isinstance(record, FuseRecord) and name == "X.npy":
            return (max((b.stop for b in record.blocks), default=0),), "float32"
        return None, None

    def table(self, name: str) -> Any:
        """A Parquet output as a DataFrame; a damaged file is a clear error."""
        import pandas as pd

        try:
            return pd.read_parquet(self.file(name))
        except (ValueError, OSError) as exc:  # pyarrow's errors derive from these
            raise MissingInputError(
                f"{self.path / name}: unreadable table ({exc})", hint="rebuild it with --force"
            ) from None

    def json(self, name: str) -> Any:
        """A JSON output, its content checked; a damaged file is a clear error."""
        try:
            return json.loads(self.file(name).read_text(encoding="utf-8"))
        except (ValueError, OSError, RecursionError) as exc:
            raise MissingInputError(
                f"{self.path / name}: unreadable JSON ({type(exc).__name__})",
                hint="rebuild it with --force",
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

    def upstream(self, role: str = "upstream") -> Artifact:
        """The artifact this one was built from (resolved relative to this folder)."""
        up = self.record.inputs.roles().get(role)
        if not up:
            raise MissingInputError(f"{self.path}: a {self.stage} artifact has no {role} artifact")
        path = self.resolve(up.path)
        art = load(path)
        if art.fingerprint != up.fingerprint:
            raise MissingInputError(
                f"{self.path}: its {role} {path} changed since it was built",
                hint=f"rerun `mmcli {self.stage}` to bring it up to date",
            )
        return art

    def chain(self) -> list[Artifact]:
        """This artifact and every upstream one, back to the preprocess artifact.

        A record whose chain loops (an upstream that is itself or a descendant) or runs
        deeper than any real pipeline is damaged: a clear error, never an endless walk.
        """
        arts = [self]
        seen = {self.path.resolve()}
        while arts[-1].record.inputs.upstream:
            up = arts[-1].upstream()
            real = up.path.resolve()
            if real in seen or len(arts) >= MAX_CHAIN:
                raise MissingInputError(
                    f"{self.path}: its chain of upstream artifacts loops back to {up.path}"
                    if real in seen
                    else f"{self.path}: a chain of over {MAX_CHAIN} upstream artifacts",
                    hint="the record is damaged: rebuild the chain with --force",
                )
            seen.add(real)
            arts.append(up)
        return arts

    def find(self, stage: str) -> Artifact:
        """The nearest artifact of ``stage`` in this one's chain (itself included)."""
        for art in self.chain():
            if art.stage == stage:
                return art
        raise MissingInputError(f"{self.path}: no {stage} artifact in its chain")


def safe_name(name: str) -> bool:
    """Whether a file name from a record stays inside its artifact folder."""
    parts = name.split("/")
    return (
        bool(name)
        and "\\" not in name
        and "\0" not in name
        and not name.startswith("/")
        and all(p not in ("", ".", "..") for p in parts)
    )


def verified_cache(path: Path) -> Path:
    """The stat cache of an artifact's checked outputs, beside it (``.NAME.verified.json``)."""
    return path.parent / f".{path.name}.verified.json"


def verify(folder: Path, name: str, sha256: str) -> str | None:
    """Why output ``name`` of the artifact at ``folder`` cannot be used, or None.

    As the stat cache of input files: a file whose size, mtime, inode and ctime are those
    recorded when it was last found to hold ``sha256`` is not read again. An edit in place
    changes its ctime, whatever it does to the rest.
    """
    from mmcli.artifacts.filecache import hash_file, signature

    if not safe_name(name):
        return "a file name outside the artifact folder"
    path = folder / name
    try:
        st = os.lstat(path)
    except OSError:
        return "missing since the artifact was written"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a link, FIFO or device is never opened)"
    cache = verified_cache(folder)
    known = _checked(cache)
    sig = signature(st)
    if known.get(name) == [sig, sha256]:
        return None
    if hash_file(str(path)) != sha256:
        return "changed since the artifact was written (its content hash differs)"
    known[name] = [sig, sha256]  # kept with what other readers checked; written at exit
    _VERIFIED[cache][2] = True
    return None


#: Each stat cache of checked outputs, as this process last read or wrote it: [the cache
#: file's signature then, its entries, whether entries were added since]. ``verify`` reads
#: a cache once per change of the file, not once per output (5,000 feature files made
#: that quadratic), and writes what it added once, when the process exits.
_VERIFIED: dict[Path, list[Any]] = {}


def _cache_signature(cache: Path) -> list[int] | None:
    from mmcli.artifacts.filecache import signature

    try:
        return signature(os.stat(cache))
    except OSError:
        return None


def _checked(cache: Path) -> dict[str, list]:
    """The entries of stat cache ``cache`` (name -> [signature, sha256]), read again only
    when the file changed since this process last read or wrote it."""
    from mmcli.artifacts.filecache import read_cache

    sig = _cache_signature(cache)
    memo = _VERIFIED.get(cache)
    if memo is None or memo[0] != sig:
        memo = _VERIFIED[cache] = [sig, read_cache(cache) if sig else {}, False]
    return memo[1]


@atexit.register
def save_verified() -> None:
    """Write the entries ``verify`` added to each stat cache (a cache that cannot be
    written is no error: the files are hashed again next time)."""
    from mmcli.artifacts.filecache import write_cache

    for cache, memo in list(_VERIFIED.items()):
        if memo[2] and _cache_signature(cache) == memo[0] and cache.parent.is_dir():
            if write_cache(cache, memo[1]):
                _VERIFIED[cache] = [_cache_signature(cache), memo[1], False]


def seed_verified(folder: Path, outputs: dict[str, dict[str, Any]]) -> None:
    """Record the outputs a writer has just hashed, so that readers need not hash them again."""
    from mmcli.artifacts.filecache import signature, write_cache

    entries: dict[str, list] = {}  # a new artifact: what was known is void
    for name, info in outputs.items():
        try:
            entries[name] = [signature(os.lstat(folder / name)), info["sha256"]]
        except OSError:
            continue
    cache = verified_cache(folder)
    if write_cache(cache, entries):
        _VERIFIED[cache] = [_cache_signature(cache), entries, False]
    else:
        _VERIFIED.pop(cache, None)


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
    hold_shared(path)  # before the record is read: no writer replaces it under this run
    if not path.exists():
        raise MissingInputError(f"{path}: no such artifact")
    if not record_path.is_file():
        raise MissingInputError(
            f"{path}: not a valid mmcli artifact (no {RECORD_NAME}: incomplete, or not mmcli's)"
        )
    record = read_record(record_path)
    if stages and record.stage not in stages:
        raise MissingInputError(
            f"{path}: is {'an' if record.stage[0] in 'aeiou' else 'a'} {record.stage} "
            f"artifact, expected {' or '.join(stages)}",
            hint=_wrong_stage_hint(path, record.stage, stages),
        )
    if stages and record.shard and not shards_ok:
        shard = record.shard
        raise UsageError(
            f"{path}: is shard {shard.index}/{shard.count} of a {record.stage} run, "
            "not a whole artifact",
            hint=f"join the {shard.count} shards first: mmcli merge SHARD... --out DIR",
        )
    return Artifact(path, record)


#: The chain's stages in order, for saying which command comes next.
CHAIN = ("preprocess", "extract-features", "fuse", "train", "evaluate")


def _wrong_stage_hint(path: Path, stage: str, expected: tuple[str, ...]) -> str | None:
    """The next command, when ``path`` is earlier in the chain than expected; a swap of two
    arguments, when it is later."""
    if stage not in CHAIN or not all(e in CHAIN for e in expected):
        return None
    at = CHAIN.index(stage)
    later = [CHAIN.index(e) for e in expected if CHAIN.index(e) > at]
    if not later:
        return f"did you swap two arguments? A {stage} artifact goes in another place"
    target = CHAIN[min(later)]
    if min(later) == at + 1:
        return f"run `mmcli {target} {path} --out DIR` first, and pass DIR here"
    return (
        f"run `mmcli {CHAIN[at + 1]} {path} --out DIR` first, and the stages after it "
        f"up to {target}; pass the {target} artifact here"
    )


def read_record(record_path: Path) -> Record:
    """The typed record in ``record_path``; an old, damaged or foreign one is a clear error."""
    try:
        size = os.stat(record_path).st_size
        if size > MAX_RECORD_BYTES:
            raise MissingInputError(
                f"{record_path}: damaged record ({size:,} bytes, over the "
                f"{MAX_RECORD_BYTES >> 20} MiB any record of this mmcli stays under)",
                hint="rebuild it with --force",
            )
        raw = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise MissingInputError(
            f"{record_path}: unreadable record ({type(exc).__name__}: {str(exc)[:120]})",
            hint="rebuild it with --force",
        ) from None
    found = raw.get("format") if isinstance(raw, dict) else None
    if found != FORMAT:
        raise MissingInputError(
            f"{record_path.parent}: built by an older mmcli (record format {found}, this "
            f"mmcli reads {FORMAT})"
            if isinstance(found, int) and found < FORMAT
            else f"{record_path}: not a record this mmcli reads (format {found!r})",
            hint="rebuild it with --force",
        )
    outside = [name for name in raw.get("outputs") or {} if not safe_name(str(name))]
    if outside:
        raise MissingInputError(
            f"{record_path}: damaged record: it lists {outside[0]!r}, outside the artifact",
            hint="rebuild it with --force",
        )
    try:
        return parse(raw)
    except RecordError as exc:
        raise MissingInputError(
            f"{record_path}: damaged record ({exc})", hint="rebuild it with --force"
        ) from None


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


def input_ref(art: Artifact, out: Path) -> dict[str, str]:
    """An input artifact as the record of the artifact built at ``out`` names it: its
    stage, its path relative to ``out``, its fingerprint (``records.ArtifactRef``)."""
    return {"stage": art.stage, "path": relative_to(art.path, out), "fingerprint": art.fingerprint}
