"""`mmcli train` beside busy neighbour processes: wall and CPU time, heads and e2e.

    python benchmarks/contention.py [--rows 2000] [--repeats 3] [--work DIR]
                                    [--env NAME=VALUE ...]

A shared machine (a CI runner, a workstation) always has other work on it. A training
run that spin-waits for its own threads while a neighbour holds a core burns CPU and
gets slower than a fair share of the machine would make it. This prints, for the MLP
head on a fused artifact and for e2e (a few epochs) on the preprocess artifact:

- wall and CPU time (user + sys of the ``mmcli train`` process, from ``os.wait4``)
  with 0, 1 and 2 busy neighbours (each a Python loop that keeps one core busy);
- wall with one neighbour / wall alone (goal: at most 2.2), and CPU with two
  neighbours / CPU alone (goal: at most 1.3).

Each ``--env NAME=VALUE`` adds a variant run with that variable set, so the same run
compares mmcli as shipped with, say, ``OMP_WAIT_POLICY=ACTIVE`` (what torch does without
mmcli's default). Runs alternate between variants and neighbour counts; the median of
``--repeats`` is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate  # noqa: E402

BUSY = "while True: pass"
MMCLI = [sys.executable, "-m", "mmcli"]


def _mmcli(*args: object, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run one mmcli command to completion: (wall seconds, CPU seconds of it and its children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*MMCLI, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mmcli {' '.join(map(str, args))} failed:\n{proc.stderr.read().decode()}")
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def _neighbours(n: int) -> list[subprocess.Popen]:
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(n)]
    time.sleep(0.5)  # let them reach the loop
    return busy


def _stop(busy: list[subprocess.Popen]) -> None:
    for p in busy:
        p.kill()
        p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--e2e-epochs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmcli-contention"))
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--jobs", default="mlp head,e2e", help="comma-separated: mlp head, e2e")
    parser.add_argument("--reuse", action="store_true", help="keep WORK's artifacts if there")
    opts = parser.parse_args()

    work = opts.work
    if not (opts.reuse and (work / "fused").exists()):
        shutil.rmtree(work, ignore_errors=True)
        manifest = generate(work / "data", opts.rows)
        _mmcli("preprocess", manifest, "--out", work / "prep")
        _mmcli("extract-features", work / "prep", "--out", work / "feats")
        _mmcli("fuse", work / "feats", "--out", work / "fused")

    variants = {"as shipped": None}
    for item in opts.env:
        name, _, value = item.partition("=")
        variants[item] = {**os.environ, name: value}
    jobs = {
        "mlp head": ["train", work / "fused", "--model", "mlp"],
        "e2e": ["train", work / "prep", "--model", "e2e", "--epochs", opts.e2e_epochs],
    }
    jobs = {name: args for name, args in jobs.items() if name in opts.jobs.split(",")}
    print(
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} before; {opts.rows} rows, "
        f"median of {opts.repeats}"
    )
    times: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for r in range(opts.repeats):
        loads = (0, 1, 2) if r % 2 == 0 else (2, 1, 0)
        for job, args in jobs.items():
            for busy_count in loads:
                names = list(variants) if r % 2 == 0 else list(variants)[::-1]
                for variant in names:
                    out = work / "model"
                    shutil.rmtree(out, ignore_errors=True)
                    busy = _neighbours(busy_count)
                    try:
                        figures = _mmcli(*args, "--out", out, env=variants[variant])
                    finally:
                        _stop(busy)
                    times.setdefault((job, variant, busy_count), []).append(figures)
    for job in jobs:
        print(f"\n{job}")
        for variant in variants:
            wall = {n: statistics.median(w for w, _ in times[job, variant, n]) for n in (0, 1, 2)}
            cpu = {n: statistics.median(c for _, c in times[job, variant, n]) for n in (0, 1, 2)}
            cells = "   ".join(f"{n} busy: {wall[n]:6.1f} s wall {cpu[n]:6.1f} s CPU" for n in wall)
            print(f"  {variant:<22} {cells}")
            print(
                f"  {'':<22} wall 1 busy / alone {wall[1] / wall[0]:.2f} (goal <= 2.2)   "
                f"CPU 2 busy / alone {cpu[2] / cpu[0]:.2f} (goal <= 1.3)"
            )


if __name__ == "__main__":
    main()
