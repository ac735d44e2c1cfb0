"""Score each input column alone and all of them fused, with mmcli's default pipeline.

    python benchmarks/modality_scores.py [MANIFEST] [--method concat|weighted-sum] [--model mlp]

Prints one line per run: the columns used, test macro-F1 and accuracy. The single-column
runs ignore the other inputs with `--input COLUMN:ignore`, everything else as the defaults.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from mmcli import config as cfgs
from mmcli.stages import evaluate, extract_features, fuse, preprocess, train


def run_chain(manifest: Path, work: Path, ignore: list[str], method: str, model: str) -> dict:
    prep = preprocess.run(
        cfgs.build(
            cfgs.PreprocessConfig,
            {"manifest": manifest, "out": work / "prep", "inputs": {c: "ignore" for c in ignore}},
            None,
        )
    )
    extract_features.run(cfgs.ExtractConfig(prep=work / "prep", out=work / "feats"))
    fuse.run(cfgs.FuseConfig(feats=work / "feats", out=work / "fused", method=method))
    train.run(cfgs.TrainConfig(data=work / "fused", out=work / "model", model=model))
    evaluate.run(cfgs.EvaluateConfig(model=work / "model", data=work / "fused", out=work / "eval"))
    metrics = json.loads((work / "eval/metrics.json").read_text())
    return {"columns": prep["columns"], **metrics}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest", nargs="?", default="sample_data/manifest.csv", type=Path)
    parser.add_argument("--method", default="concat")
    parser.add_argument("--model", default="mlp")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        columns = preprocess.run(
            cfgs.PreprocessConfig(manifest=args.manifest, out=Path(tmp) / "all/prep")
        )["columns"]
        inputs = [c for c, t in columns.items() if t != "ignore"]
        print(f"{'inputs':<28} {'macro_f1':>9} {'accuracy':>9} {'seconds':>8}")
        for keep in [[c] for c in inputs] + [inputs]:
            start = time.perf_counter()
            ignore = [c for c in inputs if c not in keep]
            work = Path(tmp) / "+".join(keep)
            m = run_chain(args.manifest, work, ignore, args.method, args.model)
            label = "all fused" if keep == inputs else keep[0]
            print(
                f"{label:<28} {m['macro_f1']:>9.3f} {m['accuracy']:>9.3f} "
                f"{time.perf_counter() - start:>8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
