"""End-to-end training: `mmcli train --model e2e` against a plain PyTorch loop of the same towers.

    python benchmarks/e2e_speed.py [--rows 2000] [--epochs 8] [--repeats 2] [--work DIR]

On a generated image + text + audio set (``generate.py``: 32 px images, 1 s clips at
8 kHz) preprocessed at the data's own sizes (``--image-size 32 --audio-seconds 1
--sample-rate 8000``), it times, alternating, each as a fresh process:

- ``mmcli train PREP --model e2e`` for a fixed ``--epochs`` (patience as long, so no
  early stop), augmentation off, so both sides do the same work;
- the plain loop below: the same network (``MultimodalNet`` built from the
  architecture mmcli stored, with its fitted vocabularies and scaling), the same input
  tensors, AdamW, shuffled batches of 64, a val pass per epoch, the best val epoch kept;
  no progress lines, no checks, no artifact;
- ``mmcli train`` with its default augmentation on, the same fixed epochs, for the record.

It prints wall seconds (median), mmcli / plain (goal: at most 1.2), and test macro-F1 of
each (mmcli's from ``mmcli evaluate``; the loop's on the same test rows).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate  # noqa: E402

MMCLI = [sys.executable, "-m", "mmcli"]
SIZES = ["--image-size", "32", "--audio-seconds", "1", "--sample-rate", "8000"]


def _timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout


def plain_loop(prep: Path, model_dir: Path, epochs: int) -> None:
    """Train the stored architecture with a bare loop; print its test macro-F1."""
    import copy

    import numpy as np
    import torch
    from sklearn.metrics import f1_score

    from mmcli import artifacts
    from mmcli.models.multimodal import MultimodalNet
    from mmcli.stages.model_inputs import artifact_inputs

    architecture = artifacts.load(model_dir).record.architecture
    data = artifacts.load(prep)
    table = data.table("rows.parquet")
    inputs = artifact_inputs(architecture, data, table)
    y = torch.as_tensor(table["_target"].to_numpy(), dtype=torch.long)
    split = table["_split"].to_numpy()
    train, val, test = (
        torch.as_tensor(np.flatnonzero(split == s)) for s in ("train", "val", "test")
    )

    torch.manual_seed(0)
    model = MultimodalNet(architecture)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    best, best_state = float("inf"), None
    for _ in range(epochs):
        model.train()
        for batch in train[torch.randperm(len(train))].split(64):
            opt.zero_grad()
            loss_fn(model(*(t[batch] for t in inputs)), y[batch]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(*(t[val] for t in inputs)), y[val]))
        if val_loss < best:
            best, best_state = val_loss, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        pred = model(*(t[test] for t in inputs)).argmax(1)
    print(f"{f1_score(y[test], pred, average='macro'):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmcli-e2e-speed"))
    parser.add_argument(
        "--plain", nargs=2, type=Path, metavar=("PREP", "MODEL"), help=argparse.SUPPRESS
    )
    opts = parser.parse_args()
    if opts.plain:
        plain_loop(*opts.plain, opts.epochs)
        return

    work = opts.work
    shutil.rmtree(work, ignore_errors=True)
    manifest = generate(work / "data", opts.rows)
    _timed([*MMCLI, "preprocess", str(manifest), "--out", str(work / "prep"), *SIZES])
    prep, e = str(work / "prep"), str(opts.epochs)
    fixed = ["--model", "e2e", "--epochs", e, "--patience", e, "--augment", "none"]
    jobs = {
        "mmcli, fixed epochs": [*MMCLI, "train", prep, "--out", str(work / "fixed"), *fixed],
        "plain loop": [
            sys.executable,
            __file__,
            "--plain",
            prep,
            str(work / "arch"),
            "--epochs",
            e,
        ],
        "mmcli, augmented": [
            *MMCLI,
            "train",
            prep,
            "--out",
            str(work / "shipped"),
            *fixed[:-2],
        ],
    }
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} before; {opts.rows} rows")
    walls: dict[str, list[float]] = {name: [] for name in jobs}
    scores: dict[str, str] = {}
    # The plain loop reads this model's architecture (vocabularies, scaling).
    _timed([*MMCLI, "train", prep, "--out", str(work / "arch"), *fixed])
    for r in range(opts.repeats):
        for name in list(jobs) if r % 2 == 0 else list(jobs)[::-1]:
            out = {"mmcli, fixed epochs": "fixed", "mmcli, augmented": "shipped"}.get(name)
            if out:  # trained from scratch every time (the plain loop reads "arch")
                shutil.rmtree(work / out, ignore_errors=True)
            wall, stdout = _timed(jobs[name])
            walls[name].append(wall)
            print(f"  run {r + 1}: {name} {wall:.1f} s", flush=True)
            if name == "plain loop":
                scores[name] = stdout.strip()
    for name, out in (("mmcli, fixed epochs", "fixed"), ("mmcli, augmented", "shipped")):
        _, stdout = _timed(
            [
                *MMCLI,
                "evaluate",
                str(work / out),
                prep,
                "--out",
                str(work / f"eval-{out}"),
                "--json",
            ]
        )
        scores[name] = f"{json.loads(stdout)['metrics']['macro_f1']:.4f}"
    plain = statistics.median(walls["plain loop"])
    for name in jobs:
        wall = statistics.median(walls[name])
        print(
            f"  {name:<22} {wall:7.1f} s   / plain {wall / plain:5.2f}   "
            f"test macro-F1 {scores[name]}"
        )
    print(f"  goal: mmcli, fixed epochs / plain loop <= 1.2 (load {os.getloadavg()[0]:.1f} after)")


if __name__ == "__main__":
    main()
