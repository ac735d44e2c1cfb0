"""inspect: what an artifact holds, its parameters, and its chain back to the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmcli import artifacts
from mmcli.artifacts.record import MAX_CHAIN
from mmcli.errors import MissingInputError, MmcliError
from mmcli.stages import staleness


def run(path: Path) -> dict[str, Any]:
    """A summary of one artifact and of every artifact upstream of it."""
    art = artifacts.load(path)
    record = art.record
    chain = []
    current = art
    seen = {art.path.resolve()}
    while True:
        entry = {
            "stage": current.stage,
            "path": str(current.path),
            "fingerprint": current.fingerprint[:16],
        }
        chain.append(entry)
        if not current.record.inputs.upstream:
            manifest = current.record.inputs.manifest
            if manifest:
                chain.append(
                    {
                        "stage": "manifest",
                        "path": str(current.resolve(manifest.path)),
                        "fingerprint": manifest.sha256[:16],
                    }
                )
            break
        try:
            current = current.upstream()
        except MmcliError as exc:
            chain.append({"stage": "?", "path": "", "problem": exc.message})
            break
        if current.path.resolve() in seen or len(chain) >= MAX_CHAIN:
            raise MissingInputError(
                f"{art.path}: its chain of upstream artifacts loops back to {current.path}",
                hint="the record is damaged: rebuild the chain with --force",
            )
        seen.add(current.path.resolve())
    summary: dict[str, Any] = {
        "stage": "inspect",
        "artifact": str(art.path),
        "kind": art.stage,
        "mmcli_version": record.mmcli_version,
        "params": record.params,
        "outputs": {name: info.bytes for name, info in record.outputs.items()},
        "summary": record.summary,
        "chain": chain,
        # The same answer as `mmcli status`, from the same check.
        "state": staleness.check(art.path).to_json(),
    }
    if art.stage == "preprocess":
        rejected = art.table("rejected.parquet")
        summary["rejected_examples"] = rejected.head(10).to_dict(orient="records")
    return summary
