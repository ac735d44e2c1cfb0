"""The ``mmcli`` command: one Typer app, every command registered in one visible list.

Each command module imports only typer at load time; the stages (and torch,
librosa, pandas) load inside the command that runs, so ``mmcli --help`` is fast. A
stage command's options come from its config model (``_stage.py``), built only when
that command is parsed.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated

import typer

from mmcli import __version__
from mmcli.cli import (
    compare,
    encoders,
    evaluate,
    extract_features,
    fuse,
    inspect,
    merge,
    predict,
    preprocess,
    run,
    status,
    train,
    tune,
)
from mmcli.cli._common import Interrupted
from mmcli.cli._help import Command, Group, epilog
from mmcli.cli._stage import StageCommand
from mmcli.errors import EXIT_INTERRUPTED

COMMANDS = [
    ("preprocess", preprocess.command),
    ("extract-features", extract_features.command),
    ("fuse", fuse.command),
    ("train", train.command),
    ("tune", tune.command),
    ("evaluate", evaluate.command),
    ("merge", merge.command),
    ("predict", predict.command),
    ("inspect", inspect.command),
    ("run", run.command),
    ("status", status.command),
    ("compare", compare.command),
    ("encoders", encoders.command),
]

app = typer.Typer(
    name="mmcli",
    help="Multimodal ML pipelines from the shell: preprocess -> extract-features -> fuse -> "
    "train -> evaluate, each stage reading and writing an on-disk artifact.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help text: rich's help renderer alone takes ~0.25 s to import, and
    # `mmcli --help` must answer in a blink. Progress bars still use rich.
    rich_markup_mode=None,
    cls=Group,  # commands in sections: pipeline stages, then tools
    add_completion=True,  # --install-completion for bash, zsh, fish and PowerShell
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _name, _function in COMMANDS:
    app.command(
        _name, cls=StageCommand if hasattr(_function, "stage") else Command, epilog=epilog(_name)
    )(_function)


def _version(value: bool) -> None:
    if value:
        print(f"mmcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = None,
) -> None:
    """Multimodal ML pipelines from the shell."""


def _terminate(signum: int, frame: object) -> None:
    raise Interrupted(128 + signum)


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    # Past a file-size limit, let writes fail with EFBIG (exit 6, old output intact)
    # instead of the kernel killing the process mid-write.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        app()
    except SystemExit as exc:
        if exc.code in (EXIT_INTERRUPTED, 128 + signal.SIGTERM):
            _exit_now(exc.code)
        raise


def _exit_now(code: int) -> None:
    """End an interrupted run at once. The stage has already removed its temp folder
    and said so; what is left is the interpreter tearing down torch and friends (about
    1 s, several under load), which would break the promise that a signal ends any
    stage within 2 s. Output is flushed and worker processes are stopped first."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.terminate()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
