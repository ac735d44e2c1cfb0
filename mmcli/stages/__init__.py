"""The pipeline as a library: each stage module has ``run(config, progress=None) -> dict``.

Nothing here imports typer or rich; progress is reported through a callback
``progress(task: str, done: int, total: int | None)``.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, "int | None"], None]


def no_progress(task: str, done: int, total: int | None) -> None:
    """The default progress callback: say nothing."""
