"""Time per stage against the number of manifest columns (the goal: linear).

    python benchmarks/wide.py [--columns 500 1000 2000 5000] [--rows 12]
        [--stages preprocess extract-features fuse train evaluate]

Each manifest holds an id, a two-class label and COLUMNS number columns; every stage
runs once per size in a fresh folder. Prints seconds and seconds per 1,000 columns.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

NEXT = {
    "preprocess": "prep",
    "extract-features": "feats",
    "fuse": "fused",
    "train": "model",
    "evaluate": "eval",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", type=int, nargs="+", default=[500, 1000, 2000, 5000])
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--stages", nargs="+", default=["preprocess", "extract-features"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.columns:
            folder = Path(tmp) / str(n)
            folder.mkdir()
            df = pd.DataFrame(
                rng.normal(size=(args.rows, n)).round(3), columns=[f"c{i}" for i in range(n)]
            )
            df.insert(0, "label", (["a", "b"] * args.rows)[: args.rows])
            df.to_csv(folder / "manifest.csv", index=False)
            sources = [folder / "manifest.csv"]
            for stage in args.stages:
                out = folder / NEXT[stage]
                if stage == "evaluate":  # the model and the data it was trained on
                    sources = [folder / "model", folder / "fused"]
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "mmcli", stage, *map(str, sources)]
                    + ["--out", str(out), "-q"],
                    check=True,
                )
                took = time.perf_counter() - start
                print(f"{n:6d} columns  {stage:17s} {took:7.2f} s  {1000 * took / n:6.2f} s/1k")
                sources = [out]


if __name__ == "__main__":
    main()
