"""Worker processes for row-parallel work: ordered results, bounded work in flight.

Stages split rows into chunks and map a top-level function over them. Results come
back in submission order, so what a stage writes never depends on the number of
workers; at most two chunks per worker are in flight, so memory stays bounded however
many rows there are. One worker runs everything in this process, with no pool at all.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """Cores this process may run on (what ``--workers`` defaults to)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def resolve_workers(workers: int | None) -> int:
    """``None`` or 0 means every available core."""
    return workers if workers else available_cores()


def _worker_start(parent: int) -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it, cleans up,
    # and stops the workers; a worker dying mid-chunk would only muddle the message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A parent killed outright (SIGKILL, OOM) cannot stop its workers, and they would
    # wait for work forever: each one leaves within a second of its parent.
    threading.Thread(target=_follow_parent, args=(parent,), daemon=True).start()


def _follow_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def ordered_map(fn: Callable[[T], R], tasks: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, tasks)`` on ``workers`` processes, results in order, lazily."""
    if workers <= 1:
        yield from map(fn, tasks)
        return
    # Forked workers share the parent's memory until something writes to it, and the
    # garbage collector writes to every object it visits: frozen objects are skipped,
    # so each worker does not end up with a private copy of the parent's heap.
    gc.freeze()
    methods = multiprocessing.get_all_start_methods()
    # fork starts a worker in milliseconds with every module already imported.
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
    )
    pending: deque[Future[Any]] = deque()
    finished = False
    try:
        for task in tasks:
            pending.append(pool.submit(fn, task))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
        finished = True
    finally:
        if not finished:
            # A signal, an error or a consumer that stopped early: nothing a worker does
            # now will be used, and waiting for the chunk it is on could take minutes.
            stop_workers(pool)
        pool.shutdown(wait=True, cancel_futures=True)
        gc.unfreeze()


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes at once (they write only into the stage's
    temporary folder, which the stage removes)."""
    kill = getattr(pool, "kill_workers", None)  # Python 3.14
    if kill is not None:
        kill()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError):  # already gone, or already closed
            pass
