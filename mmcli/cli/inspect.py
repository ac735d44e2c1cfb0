"""mmcli inspect ARTIFACT"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli._common import DebugOpt, JsonOpt, execute


def command(
    artifact: Annotated[Path, typer.Argument(help="Any mmcli artifact folder.")],
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show what an artifact holds, its parameters, and its chain back to the manifest."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli.stages import inspect

        return inspect.run(artifact)

    execute("inspect", action, json_out=json_out, quiet=False, debug=debug)
