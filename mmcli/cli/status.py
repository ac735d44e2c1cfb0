"""mmcli status ARTIFACT..."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli._common import DebugOpt, JsonOpt, error, execute
from mmcli.errors import EXIT_STALE


def command(
    artifacts: Annotated[list[Path], typer.Argument(help="Artifact folders to check.")],
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Say whether each artifact is up to date, stale (and why) or incomplete; exit 8 if any is not up to date."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli.stages import staleness

        results = [staleness.check(path).to_json() for path in artifacts]
        return {
            "stage": "status",
            "artifacts": results,
            "up_to_date": all(r["state"] == "up-to-date" for r in results),
        }

    summary = execute("status", action, json_out=json_out, quiet=True, debug=debug)
    if not json_out:
        for r in summary["artifacts"]:
            print(f"{r['artifact']}: {r['state']}" + (f" ({r['stage']})" if r["stage"] else ""))
            for reason in r["reasons"]:
                print(f"  - {reason}")
    if not summary["up_to_date"]:
        if json_out:
            error("some artifacts are not up to date")
        raise typer.Exit(EXIT_STALE)
