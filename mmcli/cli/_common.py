"""What every command shares: common options, progress display, error -> exit code, output."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mmcli.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, MmcliError, UsageError

JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json", help="Print a machine-readable summary on stdout, and nothing else there."
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="If another mmcli is writing the same output, wait for it instead of failing.",
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Rebuild even if the output is up to date.")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="YAML or TOML file of this stage's parameters (keys spelled as the flags; "
        "flags given on the command line win).",
        dir_okay=False,
        metavar="FILE",
    ),
]


class Interrupted(BaseException):
    """Raised from a signal handler so that cleanup (temporary folders, locks) still runs."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class Reporter:
    """The progress callback stages get: a rich bar on a terminal, plain lines in logs."""

    def __init__(self, command: str, enabled: bool):
        self.command, self.enabled = command, enabled
        self.tty = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._last: dict[str, float] = {}

    def __enter__(self) -> Reporter:
        if self.tty:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, task: str, done: int, total: int | None) -> None:
        """Report ``done`` of ``total``. A task ``"name | detail"`` is one bar whose detail
        changes (training's losses); in plain lines each detail is printed (one per epoch)."""
        if not self.enabled:
            return
        name, _, detail = task.partition(" | ")
        if self._bar is not None:
            shown = f"{name} {detail}" if detail else name
            if name not in self._tasks:
                self._tasks[name] = self._bar.add_task(shown, total=total)
            self._bar.update(self._tasks[name], completed=done, total=total, description=shown)
            return
        # Plain lines: the first, the last, and at most one every 2 seconds in between.
        now = time.monotonic()
        finished = total is not None and done >= total
        if name in self._last and not finished and not detail and now - self._last[name] < 2.0:
            return
        self._last[name] = now
        count = f" {done}/{total}" if total else ""
        detail = f": {detail}" if detail else ""
        print(f"{self.command}: {name}{count}{detail}", file=sys.stderr, flush=True)


def execute(
    command: str,
    action: Callable[[Reporter], dict[str, Any]],
    *,
    json_out: bool,
    quiet: bool,
    debug: bool,
    show: bool = True,
) -> dict[str, Any]:
    """Run one command: progress, errors mapped to exit codes, summary rendered (unless
    ``show`` is off and not ``json_out``: the command printed its parts as they came)."""
    if int(os.environ.get("RANK", "0")) > 0:  # one of torchrun's processes: rank 0 reports
        quiet, json_out = True, False
    try:
        with Reporter(command, enabled=not quiet) as reporter:
            summary = action(reporter)
    except MmcliError as exc:
        if debug:
            traceback.print_exc()
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except (KeyboardInterrupt, Interrupted) as exc:
        code = exc.code if isinstance(exc, Interrupted) else EXIT_INTERRUPTED
        error("interrupted; nothing was published")
        raise typer.Exit(code) from None
    except typer.Exit:
        raise
    except Exception as exc:  # an mmcli bug, not a user error
        if debug:
            traceback.print_exc()
        error(
            f"internal error: {type(exc).__name__}: {exc}",
            hint="this is a bug in mmcli; rerun with --debug for the traceback",
        )
        raise typer.Exit(EXIT_INTERNAL) from None
    render(summary, json_out=json_out, quiet=quiet or not show)
    return summary


def error(message: str, hint: str | None = None) -> None:
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"  hint: {hint}", file=sys.stderr)


def render(summary: dict[str, Any], *, json_out: bool, quiet: bool) -> None:
    """The summary on stdout; on stderr when the output itself went to stdout (``--out -``)."""
    stream = sys.stderr if summary.get("out") == "-" else sys.stdout
    if json_out:
        print(json.dumps(summary, indent=2, sort_keys=True, default=str), file=stream)
        return
    if quiet:
        return
    head = summary.get("stage", "mmcli")
    status = summary.get("status")
    out = summary.get("out")
    line = f"{head}: {status}" if status else head
    if out:
        line += f" -> {out}"
    if status == "up-to-date":
        line += " (inputs and parameters unchanged; --force rebuilds)"
    print(line, file=stream)
    rest = {k: v for k, v in summary.items() if k not in ("stage", "status", "out")}
    for item in item_lines(rest):
        print(item, file=stream)


def item_lines(items: dict[str, Any], indent: int = 2) -> list[str]:
    """``key: value`` lines, values aligned; a large or nested dict and a list of long
    texts go on their own lines below their key."""
    width = max((len(str(k)) for k in items), default=0) + 1
    pad, lines = " " * indent, []
    for key, value in items.items():
        if (
            isinstance(value, dict)
            and value
            and (len(value) > 6 or any(isinstance(v, (dict, list)) for v in value.values()))
        ):
            lines.append(f"{pad}{key}:")
            lines += item_lines(value, indent + 2)
        elif isinstance(value, list) and any(isinstance(v, str) and len(v) > 40 for v in value):
            lines.append(f"{pad}{key}:")
            lines += [f"{pad}  {item}" for item in value]
        else:
            lines.append(f"{pad}{f'{key}:':<{width}} {_short(value)}")
    return lines


def _short(value: Any) -> str:
    """A value as a person reads it: no Python reprs (None, True, {...})."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_short(v)}" for k, v in value.items()) if value else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_short(v) for v in value) if value else "none"
    return str(value)


def parse_pairs(items: list[str] | None, sep: str, flag: str) -> dict[str, str] | None:
    """``["a:b", "c:d"]`` (or comma-joined) -> ``{"a": "b", "c": "d"}``; None when not given."""
    if not items:
        return None
    pairs: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            if sep not in part:
                raise UsageError(f"{flag} {part!r}: expected NAME{sep}VALUE")
            name, value = part.rsplit(sep, 1)
            pairs[name.strip()] = value.strip()
    return pairs
