"""mmcli run PIPELINE.yaml"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli._common import DebugOpt, ForceOpt, JsonOpt, QuietOpt, error, execute
from mmcli.errors import EXIT_GATE


def command(
    pipeline: Annotated[
        Path,
        typer.Argument(
            help="Pipeline file (YAML or TOML): manifest, out, and one section per stage."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say which stages would run and why; change nothing.")
    ] = False,
    until: Annotated[
        str | None, typer.Option(help="Stop after this stage.", metavar="STAGE")
    ] = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run the whole chain from one pipeline file, skipping stages that are up to date."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli.stages import pipeline as pipe

        return pipe.run(pipeline, dry_run=dry_run, until=until, force=force, progress=progress)

    summary = (
        execute("run", action, json_out=True, quiet=quiet, debug=debug)
        if json_out
        else (execute("run", action, json_out=False, quiet=True, debug=debug))
    )
    if not json_out and not quiet:
        for stage in summary["stages"]:
            line = f"{stage['stage']}: {stage['status']} -> {stage.get('out', '')}"
            if stage.get("why"):
                line += f" ({stage['why']})"
            print(line)
    gates = summary.get("gates")
    if gates and not gates["passed"]:
        for failure in gates["failures"]:
            error(f"quality gate failed: {failure}")
        raise typer.Exit(EXIT_GATE)
