"""mmcli run PIPELINE.yaml"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mmcli.cli._common import DebugOpt, ForceOpt, JsonOpt, QuietOpt, error, execute, render
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
    # Each stage's summary prints as soon as it ends, its progress as it goes (stderr),
    # as the single commands print theirs; --json prints one summary at the end.
    show = None if json_out or quiet else _show

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli.stages import pipeline as pipe

        return pipe.run(
            pipeline, dry_run=dry_run, until=until, force=force, progress=progress, on_stage=show
        )

    summary = execute("run", action, json_out=json_out, quiet=quiet, debug=debug, show=False)
    gates = summary.get("gates")
    if gates and not gates["passed"]:
        for failure in gates["failures"]:
            error(f"quality gate failed: {failure}")
        raise typer.Exit(EXIT_GATE)


def _show(summary: dict[str, Any]) -> None:
    render(summary, json_out=False, quiet=False)
    sys.stdout.flush()
