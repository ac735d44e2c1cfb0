"""status: is each artifact up to date, stale (and why), or incomplete?

Content decides, never modification times alone: every output file is checked against
its recorded SHA-256 (a file whose size, mtime, inode and ctime are those it had when last
hashed is not read again), the manifest and every media file it names likewise, and each
upstream artifact the same way, recursively. Paths in a record are relative to the
artifact's folder, so the answer is the same from any current folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmcli import __version__, artifacts
from mmcli.artifacts.hashing import file_sha256
from mmcli.artifacts.record import MAX_CHAIN
from mmcli.errors import MmcliError

#: The state of an artifact whose check has begun and not ended: met again, it is a loop.
_CHECKING = "checking"


def check(path: Path, _seen: dict[Path, dict[str, Any]] | None = None) -> dict[str, Any]:
    """{"artifact", "stage", "state": up-to-date|stale|incomplete|missing, "reasons": [...]}"""
    seen = {} if _seen is None else _seen
    key = Path(path).resolve()
    if key in seen:
        return seen[key]
    result: dict[str, Any] = {
        "artifact": str(path),
        "stage": None,
        "state": _CHECKING,
        "reasons": [],
    }
    seen[key] = result
    _check(Path(path), result, seen)
    if result["state"] == _CHECKING:
        result["state"] = "up-to-date"
    return result


def _check(path: Path, result: dict[str, Any], seen: dict[Path, dict[str, Any]]) -> None:
    leftovers = sorted(p.name for p in Path(path).parent.glob(f".{Path(path).name}.tmp-*"))
    if leftovers:
        result["reasons"].append(f"an interrupted run left {', '.join(leftovers)}")
    try:
        art = artifacts.load(path)
    except MmcliError as exc:
        result["state"] = "missing" if not Path(path).exists() else "incomplete"
        result["reasons"].append(exc.message)
        return
    result["stage"] = art.stage
    damaged = art.damaged()
    if damaged:
        result["state"] = "incomplete"
        result["reasons"] += [f"{name} changed or damaged since it was written" for name in damaged]
        return
    if len(seen) > MAX_CHAIN:
        result["state"] = "incomplete"
        result["reasons"].append(f"a chain of over {MAX_CHAIN} upstream artifacts")
        return
    problem, reasons = _stale_reasons(art, seen)
    if reasons:
        result["state"] = "incomplete" if problem else "stale"
        result["reasons"] += reasons


def _stale_reasons(art: artifacts.Artifact, seen: dict) -> tuple[bool, list[str]]:
    """(whether the record itself is damaged, the reasons it is not up to date)."""
    reasons = []
    if art.record.get("mmcli_version") != __version__:
        reasons.append(f"built by mmcli {art.record.get('mmcli_version')}, this is {__version__}")
    inputs = art.record.get("inputs", {})
    if "manifest" in inputs:
        reasons += _manifest_reasons(art)
    for role in ("upstream", "model"):
        if role not in inputs:
            continue
        up_path = art.resolve(inputs[role]["path"])
        upstream = check(up_path, seen)
        if upstream["state"] == _CHECKING:
            return True, [f"its {role} {up_path} loops back into its own chain"]
        if upstream["state"] in ("missing", "incomplete"):
            reasons.append(f"its {role} {up_path} is {upstream['state']}")
            continue
        if artifacts.load(up_path).fingerprint != inputs[role]["fingerprint"]:
            reasons.append(f"its {role} {up_path} was rebuilt with different content")
        if upstream["state"] == "stale":
            reasons.append(f"its {role} {up_path} is stale ({upstream['reasons'][0]})")
    return False, reasons


def _manifest_reasons(art: artifacts.Artifact) -> list[str]:
    from mmcli.artifacts.filecache import cache_path
    from mmcli.io.tables import read_table
    from mmcli.stages.media import hash_sources, media_cells

    recorded = art.record["inputs"]
    manifest = art.resolve(recorded["manifest"]["path"])
    if not manifest.is_file():
        return [f"manifest {manifest} is gone"]
    if file_sha256(manifest) != recorded["manifest"]["sha256"]:
        return [f"manifest {manifest} changed"]
    root = art.resolve(art.record["paths"]["data_root"])
    try:
        df = read_table(manifest)
        start, stop = art.record.get("shard", {}).get("rows", [0, len(df)])
        part = df.iloc[start:stop].reset_index(drop=True)
        cells = media_cells(part, art.record["schema"])
        sources = hash_sources(cells, root, cache_path(art.path))
    except MmcliError as exc:
        return [exc.message]
    if sources.fingerprint() == recorded["files"]:
        return []
    now = sources.table()
    try:
        before = art.table("files.parquet")
        was = dict(zip(before["file"], before["sha256"], strict=True))
    except (MmcliError, KeyError):
        was = {}
    changed = [f for f, sha in zip(now["file"], now["sha256"], strict=True) if was.get(f) != sha]
    if not changed:
        return ["a media file the manifest names changed"]
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    noun = "media file" if len(changed) == 1 else "media files"
    return [f"{len(changed)} {noun} the manifest names changed: {shown}"]
