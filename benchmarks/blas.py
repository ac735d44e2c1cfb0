"""Logistic-regression fits with one BLAS thread against all of them, at several sizes.

    python benchmarks/blas.py [--repeats 3]

``mmcli.models.late.linear_path`` (the logistic and late-fusion candidates of
``train --model auto``) fits with BLAS limited to one thread. This prints why: for each
(rows x columns) size, scikit-learn's L-BFGS logistic regression on 5 classes, a fixed
30 iterations, timed per iteration with one BLAS thread and with every core, the two
alternating, median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np

SIZES = ((300, 364), (2000, 400), (10000, 1000), (30000, 2000))


def per_iteration(x: np.ndarray, y: np.ndarray, threads: int | None) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    model = LogisticRegression(max_iter=30, tol=1e-12)
    with threadpool_limits(threads, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(x, y)
        return (time.perf_counter() - start) / int(model.n_iter_[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    for n, d in SIZES:
        x = rng.normal(size=(n, d)).astype(np.float32)
        y = (x @ rng.normal(size=(d, 5)) + rng.normal(size=(n, 5)) * 3).argmax(axis=1)
        one, every = [], []
        for r in range(opts.repeats):
            order = (1, None) if r % 2 == 0 else (None, 1)
            for threads in order:
                (one if threads == 1 else every).append(per_iteration(x, y, threads))
        a, b = statistics.median(one) * 1e3, statistics.median(every) * 1e3
        print(f"  {n:>6} x {d:<5} one thread {a:7.2f} ms/iter   all cores {b:7.2f} ms/iter"
              f"   all / one {b / a:5.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
