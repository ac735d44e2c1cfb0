"""status: is each artifact up to date, stale (and why), or incomplete?

Content decides, never modification times: every output file is hashed again and
compared with the record, the manifest and every image and audio file it names are
hashed again, and each upstream artifact is checked the same way, recursively.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmcli import __version__, artifacts
from mmcli.artifacts.hashing import file_sha256
from mmcli.errors import MmcliError


def check(path: Path, _seen: dict[Path, dict[str, Any]] | None = None) -> dict[str, Any]:
    """{"artifact", "stage", "state": up-to-date|stale|incomplete|missing, "reasons": [...]}"""
    seen = {} if _seen is None else _seen
    key = Path(path).resolve()
    if key in seen:
        return seen[key]
    result: dict[str, Any] = {
        "artifact": str(path),
        "stage": None,
        "state": "up-to-date",
        "reasons": [],
    }
    seen[key] = result
    leftovers = sorted(p.name for p in Path(path).parent.glob(f".{Path(path).name}.tmp-*"))
    if leftovers:
        result["reasons"].append(f"an interrupted run left {', '.join(leftovers)}")
    try:
        art = artifacts.load(path)
    except MmcliError as exc:
        result["state"] = "missing" if not Path(path).exists() else "incomplete"
        result["reasons"].append(exc.message)
        return result
    result["stage"] = art.stage
    damaged = _damaged_outputs(art)
    if damaged:
        result["state"] = "incomplete"
        result["reasons"] += [f"{name} changed or damaged since it was written" for name in damaged]
        return result
    reasons = _stale_reasons(art, seen)
    if reasons:
        result["state"] = "stale"
        result["reasons"] += reasons
    return result


def _damaged_outputs(art: artifacts.Artifact) -> list[str]:
    damaged = []
    for name, info in art.record.get("outputs", {}).items():
        try:
            if file_sha256(art.path / name) != info["sha256"]:
                damaged.append(name)
        except OSError:
            damaged.append(name)
    return damaged


def _stale_reasons(art: artifacts.Artifact, seen: dict) -> list[str]:
    reasons = []
    if art.record.get("mmcli_version") != __version__:
        reasons.append(f"built by mmcli {art.record.get('mmcli_version')}, this is {__version__}")
    inputs = art.record.get("inputs", {})
    if "manifest" in inputs:
        reasons += _manifest_reasons(art)
    for role in ("upstream", "model"):
        if role not in inputs:
            continue
        up_path = (art.path / inputs[role]["path"]).resolve()
        upstream = check(up_path, seen)
        if upstream["state"] in ("missing", "incomplete"):
            reasons.append(f"its {role} {up_path} is {upstream['state']}")
            continue
        if artifacts.load(up_path).fingerprint != inputs[role]["fingerprint"]:
            reasons.append(f"its {role} {up_path} was rebuilt with different content")
        if upstream["state"] == "stale":
            reasons.append(f"its {role} {up_path} is stale ({upstream['reasons'][0]})")
    return reasons


def _manifest_reasons(art: artifacts.Artifact) -> list[str]:
    from mmcli.artifacts.filecache import cache_path
    from mmcli.io.tables import read_table
    from mmcli.stages.media import hash_sources, media_cells

    recorded = art.record["inputs"]
    manifest = Path(recorded["manifest"]["path"])
    if not manifest.is_file():
        return [f"manifest {manifest} is gone"]
    if file_sha256(manifest) != recorded["manifest"]["sha256"]:
        return [f"manifest {manifest} changed"]
    root = Path(art.record.get("paths", {}).get("data_root", manifest.parent))
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
