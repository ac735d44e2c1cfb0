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
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=max(120, 30 + 24 * len(result["evaluations"])))
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    scored = Table(title="what each evaluation scored")
    for column in ("evaluation", "split", "rows", "data", "model"):
        scored.add_column(column)
    for e in result["evaluations"]:
        cells = (e["path"], e["split"], str(e["rows"]), f"{e['data']} ({e['data_id']})", e["model"])
        scored.add_row(*map(escape, cells))
    console.print(scored)
    paths = [e["path"] for e in result["evaluations"]]
    table = Table(title="metrics (green: better than the first, red: worse)")
    table.add_column("metric")
    for p in paths:
        table.add_column(escape(p), justify="right")
    for p in paths[1:]:
        table.add_column(escape(f"Δ {p}"), justify="right")
    table.add_column("better")
    colours = {"better": "green", "worse": "red", None: ""}
    for row in result["rows"]:
        diffs = []
        for d in row["differences"][1:]:
            colour = colours[compare.verdict(row, d)]
            text = compare._fmt(d, signed=True)
            diffs.append(f"[{colour}]{text}[/]" if colour else text)
        table.add_row(
            escape(row["metric"]),
            *(compare._fmt(v) for v in row["values"]),
            *diffs,
            row["better"] or "",
        )
    console.print(table)
    if result["parameters"]:
        params = Table(title="model parameters that differ")
        params.add_column("parameter")
        for p in paths:
            params.add_column(escape(p))
        for p in result["parameters"]:
            params.add_row(escape(p["parameter"]), *(escape(str(v)) for v in p["values"]))
        console.print(params)
