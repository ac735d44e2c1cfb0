"""Whether an artifact is up to date, and if not, why: the one answer every command gives.

- ``current(out, key)``: a stage's own no-op check. The artifact at ``out`` holds what the
  stage would build when its record's key (mmcli version, resolved parameters, the input
  content) is ``key`` and every output file still has its recorded content.
- ``check(path)``: what ``status`` and ``inspect`` report, from the record alone. Content
  decides, never modification times alone: every output file against its recorded
  SHA-256 (a file whose size, mtime, inode and ctime are those it had when last hashed is
  not read again), the manifest and every media file it names likewise, each upstream
  artifact the same way, back to the manifest.
- ``rebuild_reason(out, params)``: why a stage would rebuild (``run --dry-run``): its
  parameters, or the root cause ``check`` finds.

Reasons are flat and root cause first, with paths as the user gave them (a record's paths
are relative to its artifact, so the answer is the same from any current folder and
after the work folder is moved): ``work/prep is stale: images/s0001.png changed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmcli import __version__, artifacts
from mmcli.artifacts.hashing import file_sha256
from mmcli.artifacts.record import MAX_CHAIN, RECORD_NAME, verify
from mmcli.errors import MmcliError

State = Literal["up-to-date", "stale", "incomplete", "missing"]


@dataclass(frozen=True)
class Reason:
    """One cause: the artifact it lies in (as the user named it), what it makes that
    artifact, and what happened."""

    artifact: str
    state: State | None  # None: a note that changes nothing (a leftover temporary folder)
    cause: str

    def __str__(self) -> str:
        if self.state is None:
            return f"{self.artifact}: {self.cause}"
        return f"{self.artifact} is {self.state}: {self.cause}"


@dataclass
class Verdict:
    artifact: str
    stage: str | None = None
    state: State = "up-to-date"
    #: Root causes first: an upstream's own reasons come before what they make of this one.
    reasons: list[Reason] = field(default_factory=list)

    def add(self, state: State, cause: str) -> None:
        """A cause in this artifact; ``incomplete`` outranks ``stale``."""
        if self.state != "incomplete":
            self.state = state
        self.reasons.append(Reason(self.artifact, state, cause))

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "stage": self.stage,
            "state": self.state,
            "reasons": [str(r) for r in self.reasons],
        }


# -- a stage's own check ------------------------------------------------------------------
def current(out: Path, key: str) -> Any:
    """The typed record of the artifact at ``out`` if it is what a build with ``key``
    would make, with every output still as written; None otherwise."""
    try:
        record = artifacts.read_record(Path(out) / RECORD_NAME)
    except MmcliError:
        return None
    if record.key != key:
        return None
    for name, info in record.outputs.items():
        if verify(Path(out), name, info.sha256) is not None:  # the content, not the size
            return None
    return record


def answer(
    out: Path,
    key: str,
    params: dict[str, Any],
    summary: dict[str, Any],
    *,
    force: bool,
    dry_run: bool,
) -> dict[str, Any] | None:
    """A stage's summary when it has nothing to build: its output is ``current`` (unless
    ``force``), or, in a dry run, why it would build. None: build it."""
    if not force and (record := current(out, key)) is not None:
        return {**summary, "status": "up-to-date", **record.summary}
    if dry_run:
        return {**summary, "status": "would-build", "why": rebuild_reason(out, params)}
    return None


def rebuild_reason(out: Path, params: dict[str, Any]) -> str:
    """Why a stage with ``params`` would rebuild ``out`` (after ``current`` said no)."""
    if not (Path(out) / RECORD_NAME).is_file():
        return "no complete artifact yet"
    try:
        record = artifacts.read_record(Path(out) / RECORD_NAME)
    except MmcliError as exc:
        return exc.message
    old = record.params
    changed = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
    if changed:
        return "parameters changed: " + ", ".join(
            f"{k} {old.get(k)!r} -> {params.get(k)!r}" for k in changed
        )
    verdict = check(out)
    if verdict.reasons:
        return str(verdict.reasons[0])
    return "its inputs changed"


# -- the whole chain, from the records ----------------------------------------------------
def check(path: Path) -> Verdict:
    """The state of the artifact at ``path`` and of its chain, with every reason."""
    return _Checker().check(Path(path))


class _Checker:
    """One walk over a chain: each artifact checked once, a loop reported, never followed."""

    def __init__(self) -> None:
        self.seen: dict[Path, Verdict | None] = {}  # None: being checked (met again: a loop)

    def check(self, path: Path) -> Verdict:
        key = path.resolve()
        if (found := self.seen.get(key)) is not None:
            return found
        self.seen[key] = None
        verdict = Verdict(str(path))
        self._check(path, verdict)
        self.seen[key] = verdict
        return verdict

    def _check(self, path: Path, verdict: Verdict) -> None:
        leftovers = sorted(p.name for p in path.parent.glob(f".{path.name}.tmp-*"))
        if leftovers:
            # Never accepted by any stage, and removed by the next run: worth a note only.
            note = f"an interrupted run left {', '.join(leftovers)}"
            verdict.reasons.append(Reason(str(path), None, note))
        try:
            art = artifacts.load(path)
        except MmcliError as exc:
            verdict.state = "missing" if not path.exists() else "incomplete"
            verdict.reasons.append(Reason(str(path), verdict.state, _without(exc.message, path)))
            return
        verdict.stage = art.stage
        damaged = art.damaged()
        if damaged:
            for name in damaged:
                verdict.add("incomplete", f"{name} changed or damaged since it was written")
            return
        if len(self.seen) > MAX_CHAIN:
            verdict.add("incomplete", f"a chain of over {MAX_CHAIN} upstream artifacts")
            return
        if art.record.mmcli_version != __version__:
            verdict.add(
                "stale", f"built by mmcli {art.record.mmcli_version}, this is {__version__}"
            )
        if art.record.inputs.manifest is not None:
            for cause in _manifest_causes(art):
                verdict.add("stale", cause)
        for role, ref in art.record.inputs.roles().items():
            self._check_input(art, role, ref, verdict)

    def _check_input(self, art: Any, role: str, ref: Any, verdict: Verdict) -> None:
        up_path = art.resolve(ref.path)
        if up_path.resolve() in self.seen and self.seen[up_path.resolve()] is None:
            verdict.add("incomplete", f"its {role} {up_path} loops back into its own chain")
            return
        upstream = self.check(up_path)
        if upstream.state == "up-to-date":
            try:
                rebuilt = artifacts.load(up_path).fingerprint != ref.fingerprint
            except MmcliError as exc:
                verdict.add("incomplete", exc.message)
                return
            if rebuilt:
                verdict.add("stale", f"its {role} {up_path} was rebuilt since, with other content")
            return
        # The upstream's own causes first: they are what the user fixes.
        verdict.reasons += [r for r in upstream.reasons if r not in verdict.reasons]
        if upstream.state in ("missing", "incomplete"):
            verdict.add("stale", f"its {role} {up_path} is {upstream.state}")
        elif verdict.state != "incomplete":
            verdict.state = "stale"


def _without(message: str, path: Path) -> str:
    """A load error's message without the artifact's path in front (the Reason has it)."""
    return message.removeprefix(f"{path}: ")


def _manifest_causes(art: Any) -> list[str]:
    """What changed in the manifest or the media files it names since ``art`` was built."""
    from mmcli.artifacts.filecache import cache_path
    from mmcli.io.tables import read_table
    from mmcli.stages.media import hash_sources, media_cells

    recorded = art.record.inputs
    manifest = art.resolve(recorded.manifest.path)
    if not manifest.is_file():
        return [f"its manifest {manifest} is gone"]
    if file_sha256(manifest) != recorded.manifest.sha256:
        return [f"its manifest {manifest} changed"]
    root = art.resolve(art.record.paths.data_root)
    try:
        df = read_table(manifest)
        start, stop = art.record.shard.rows if art.record.shard else (0, len(df))
        part = df.iloc[start:stop].reset_index(drop=True)
        sources = hash_sources(media_cells(part, art.record.table), root, cache_path(art.path))
    except MmcliError as exc:
        return [exc.message]
    if recorded.files is not None and sources.fingerprint() == recorded.files.model_dump():
        return []
    now = sources.table()
    try:
        before = art.table("files.parquet")
        was = dict(zip(before["file"], before["sha256"], strict=True))
    except (MmcliError, KeyError):
        was = {}
    now_sha = dict(zip(now["file"], now["sha256"], strict=True))
    changed = [f for f, sha in now_sha.items() if was.get(f) != sha]
    if not changed:
        return ["a media file the manifest names changed"]
    causes = [_file_cause(f, now_sha[f]) for f in changed[:3]]
    if len(changed) > 3:
        causes.append(f"{len(changed) - 3} more media files changed")
    return causes


def _file_cause(cell: str, digest: str) -> str:
    if digest.startswith("unreadable: "):
        return f"{cell} can no longer be read ({digest.removeprefix('unreadable: ')})"
    return f"{cell} changed"
