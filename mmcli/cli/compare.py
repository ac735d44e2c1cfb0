"""mmcli compare EVAL_A EVAL_B ..."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli._common import DebugOpt, JsonOpt, execute
from mmcli.errors import UsageError


def command(
    evaluations: Annotated[list[Path], typer.Argument(help="Two or more evaluate artifacts.")],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="[table|md]",
            help="table (rich on a terminal) or md (Markdown, e.g. for a pull-request comment).",
        ),
    ] = "table",
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show the metrics of several evaluations side by side, with differences to the first."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli.stages import compare

        if len(evaluations) < 2:
            raise UsageError("compare needs at least two evaluate artifacts")
        if format_ not in ("table", "md"):
            raise UsageError(f"--format {format_!r}: choose table or md")
        return compare.run(evaluations)

    result = execute("compare", action, json_out=json_out, quiet=True, debug=debug)
    if json_out:
        return
    from mmcli.stages import compare

    if format_ == "md":
        sys.stdout.write(compare.markdown(result))
        return
    from rich.console import Console
    from rich.table import Table

    paths = [e["path"] for e in result["evaluations"]]
    table = Table(title="mmcli compare")
    table.add_column("metric")
    for p in paths:
        table.add_column(p, justify="right")
    for p in paths[1:]:
        table.add_column(f"Δ {p}", justify="right")
    for row in result["rows"]:
        diffs = row["differences"][1:]
        table.add_row(
            row["metric"],
            *(compare._fmt(v) for v in row["values"]),
            *(compare._fmt(d, signed=True) for d in diffs),
        )
    Console(width=max(120, 30 + 24 * len(paths))).print(table)
