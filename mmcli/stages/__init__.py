"""The pipeline as a library: each stage module has ``run(config, progress=None) -> dict``.

Nothing here imports typer or rich; progress is reported through a callback
``progress(task: str, done: int, total: int | None)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Progress = Callable[[str, int, "int | None"], None]


def no_progress(task: str, done: int, total: int | None) -> None:
    """The default progress callback: say nothing."""


def lean_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """What a record keeps of a stage's summary: not where it ran or how it ended."""
    return {k: v for k, v in summary.items() if k not in ("stage", "out", "status")}
