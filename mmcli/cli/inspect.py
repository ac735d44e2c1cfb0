"""mmcli inspect ARTIFACT"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mmcli.cli._common import DebugOpt, JsonOpt, execute, item_lines


def command(
    artifact: Annotated[Path, typer.Argument(help="Any mmcli artifact folder.")],
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show what an artifact holds, its parameters, and its chain back to the manifest."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli.stages import inspect

        return inspect.run(artifact)

    summary = execute("inspect", action, json_out=json_out, quiet=True, debug=debug)
    if not json_out:
        print("\n".join(_lines(summary)))


def _lines(s: dict[str, Any]) -> list[str]:
    lines = [f"{s['artifact']}: {s['kind']} artifact (mmcli {s['mmcli_version']})"]
    lines.append(f"state: {s['state']['state']}")
    lines += [f"  - {reason}" for reason in s["state"]["reasons"]]
    lines.append("parameters:")
    lines += item_lines(s["params"])
    lines.append("files:")
    width = max((len(n) for n in s["outputs"]), default=0)
    lines += [f"  {n:<{width}}  {size:>12,} bytes" for n, size in s["outputs"].items()]
    if s["summary"]:
        lines.append("summary:")
        lines += item_lines(s["summary"])
    lines.append("chain (this artifact first, back to the manifest):")
    for link in s["chain"]:
        where = link.get("path") or link.get("problem", "")
        lines.append(f"  {link['stage']:<17} {link.get('fingerprint', ''):<17} {where}")
    if s.get("rejected_examples"):
        lines.append("rejected or problem rows (first 10; all in rejected.parquet):")
        for r in s["rejected_examples"]:
            file = f", file {r['file']!r}" if isinstance(r.get("file"), str) else ""
            lines.append(
                f"  row {r['row']}, column {r['column']!r}{file}: {r['reason']} ({r['action']})"
            )
    return lines
