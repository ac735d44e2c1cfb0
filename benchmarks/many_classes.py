"""Peak memory and time of evaluate's metrics, figures and report against the class count.

    python benchmarks/many_classes.py [--rows 20000] [--classes 10 1000 10000]
                                      [--ulimit-kb 3000000]

For each class count K, a fresh subprocess makes ROWS labels (Zipf-like class
frequencies, so some classes have no rows) and an (ROWS, K) float64 probability matrix
like the one a model gives, then runs what ``mmcli evaluate`` runs after predicting:
``evaluate.score`` (metrics, calibration, per-class curves) and
``evaluate.write_outputs`` (metrics.json, every figure, report.md, report.html). It
prints the peak RSS of that process (getrusage), the probability matrix's own size, the
seconds per step and metrics.json's size. With ``--ulimit-kb`` each run is
``bash -c 'ulimit -v KB; ...'``, and a MemoryError (or any failure) is shown.
predictions.parquet (one column per class) is not part of it.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(rows: int, k: int) -> None:
    # Everything imported before the matrix exists, as in the CLI.

    import matplotlib.figure  # noqa: F401
    import numpy as np
    import sklearn.metrics  # noqa: F401

    from mmcli.stages import evaluate

    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, k + 1) ** 0.8
    y = rng.choice(k, size=rows, p=weights / weights.sum())
    proba = rng.random((rows, k))  # made in place from here on: one (rows, k) matrix
    proba **= 4
    proba[np.arange(rows), y] += 0.05 * k**0.5
    proba /= proba.sum(axis=1, keepdims=True)
    classes = [f"class_{i}" for i in range(k)]
    steps = {}
    start = time.perf_counter()
    y, metrics = evaluate.score("classification", y, proba, classes)
    steps["score"] = time.perf_counter() - start
    metrics = {"task": "classification", "split": "test", **metrics}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        evaluate.write_outputs(Path(tmp), metrics, y, proba, classes, "benchmark model")
        steps["write_outputs"] = time.perf_counter() - start
        files = sorted(p.name for p in Path(tmp).iterdir())
        json_mb = (Path(tmp) / "metrics.json").stat().st_size / 1e6
    print(
        json.dumps(
            {
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "proba_mb": proba.nbytes / 1e6,
                "steps": steps,
                "metrics_json_mb": json_mb,
                "files": files,
                "roc_auc": metrics["roc_auc"],
                "roc_auc_reason": metrics.get("roc_auc_reason"),
                "per_class_curves": len(metrics["per_class_curves"]),
                "dense_confusion": metrics["confusion_matrix"] is not None,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 1000, 10_000])
    parser.add_argument("--ulimit-kb", type=int, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.rows, args.classes[0])
        return
    print(f"{args.rows:,} rows; ulimit -v: {args.ulimit_kb or 'none'} kB")
    print(f"{'classes':>8} {'peak RSS':>9} {'proba':>8} {'score':>7} {'write':>7} {'json':>7}")
    for k in args.classes:
        command = [sys.executable, __file__, "--child", "--rows", str(args.rows)]
        command += ["--classes", str(k)]
        if args.ulimit_kb:
            line = f"ulimit -v {args.ulimit_kb}; exec {shlex.join(command)}"
            command = ["bash", "-c", line]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        took = time.perf_counter() - start
        if done.returncode != 0:
            why = "MemoryError" if "MemoryError" in done.stderr else f"exit {done.returncode}"
            print(f"{k:8d} FAILED ({why}) after {took:.1f} s:\n{done.stderr[-2000:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{k:8d} {r['peak_rss_mb']:7.0f}MB {r['proba_mb']:6.0f}MB "
            f"{r['steps']['score']:6.1f}s {r['steps']['write_outputs']:6.1f}s "
            f"{r['metrics_json_mb']:5.1f}MB  roc_auc={r['roc_auc']} "
            f"curves={r['per_class_curves']} dense_confusion={r['dense_confusion']} "
            f"({took:.0f} s in all, {len(r['files'])} files)"
        )


if __name__ == "__main__":
    main()
