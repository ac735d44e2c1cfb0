"""Train head and end-to-end models on a generated data set; print quality, time, memory.

    python benchmarks/train_models.py [--rows 2000] [--e2e-epochs 30] [--skip-single]

For every model and fusion choice, and for each modality alone beside all fused: test
macro-F1, accuracy, training wall time and the training process's peak RSS. Each
`mmcli train` runs as its own process so its memory is measured alone (os.wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate  # noqa: E402

MMCLI = [sys.executable, "-m", "mmcli"]


def run_timed(*args: object) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*MMCLI, *map(str, args), "--json", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # wait4 reaps this child and gives its own rusage (not the sum of all children).
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mmcli {' '.join(map(str, args))} failed:\n{err.decode()}")
    return {
        **json.loads(out),
        "_seconds": time.perf_counter() - start,
        "_rss_mb": usage.ru_maxrss / 1024,
    }


def scores(model: Path, data: Path, out: Path) -> dict:
    result = subprocess.run(
        [*MMCLI, "evaluate", str(model), str(data), "--out", str(out), "--json", "--quiet"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)["metrics"]


def prepare(manifest: Path, work: Path, ignore: list[str]) -> tuple[Path, Path]:
    flags = [a for c in ignore for a in ("--input", f"{c}:ignore")]
    subprocess.run(
        [
            *MMCLI,
            "preprocess",
            manifest,
            "--out",
            work / "prep",
            "--image-size",
            "32",
            "--sample-rate",
            "8000",
            "--audio-seconds",
            "1",
            "-q",
            *flags,
        ],
        check=True,
    )
    subprocess.run(
        [*MMCLI, "extract-features", work / "prep", "--out", work / "feats", "-q"], check=True
    )
    subprocess.run([*MMCLI, "fuse", work / "feats", "--out", work / "fused", "-q"], check=True)
    return work / "prep", work / "fused"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--e2e-epochs", type=int, default=30)
    parser.add_argument("--skip-single", action="store_true", help="only the fused runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        manifest = generate(tmp_path / "data", args.rows)
        inputs = ["image", "audio", "text", "size", "source"]
        print(f"{args.rows} rows, 4 classes; test split 15%\n")
        print(
            f"{'inputs':<8} {'model':<8} {'fusion':<13} {'macro_f1':>8} {'accuracy':>8} "
            f"{'train_s':>8} {'peak_MB':>8}"
        )
        groups = [("all", [])]
        if not args.skip_single:
            groups += [(c, [o for o in inputs if o != c]) for c in ("image", "audio", "text")]
        for label, ignore in groups:
            prep, fused = prepare(manifest, tmp_path / label, ignore)
            runs = [("logistic", "none", fused, []), ("mlp", "none", fused, [])]
            if label == "all":
                runs += [("mlp", f, fused, []) for f in ("weighted-sum", "gated", "attention")]
                runs += [
                    ("e2e", f, prep, ["--epochs", str(args.e2e_epochs)])
                    for f in ("concat", "weighted-sum", "gated", "attention")
                ]
            else:
                runs += [("e2e", "concat", prep, ["--epochs", str(args.e2e_epochs)])]
            for model, fusion, data, extra in runs:
                out = tmp_path / label / f"{model}-{fusion}"
                t = run_timed(
                    "train", data, "--out", out, "--model", model, "--fusion", fusion, *extra
                )
                m = scores(out, data, tmp_path / label / f"eval-{model}-{fusion}")
                print(
                    f"{label:<8} {model:<8} {fusion:<13} {m['macro_f1']:>8.3f} "
                    f"{m['accuracy']:>8.3f} {t['_seconds']:>8.1f} {t['_rss_mb']:>8.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
