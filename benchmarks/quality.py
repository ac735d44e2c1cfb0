"""Model quality against the best possible score, and against a tuned scikit-learn model.

    python benchmarks/quality.py [--rows 3000] [--seeds 10 11 12] [--e2e] [--fusions]
                                 [--classes 5]
    python benchmarks/quality.py --set clips [--rows 1000] [--seeds 0 1 2]
    python benchmarks/quality.py --set emoji --data DIR [--seeds 0 1 2]

``--set clips`` and ``--set emoji`` run ``clips.py`` (video clips, ceiling known) and
``realset.py score`` (real media, built first by ``realset.py build DIR``); the rest of
this page is the default set, ``generated``.

For each seed: a set from ``ceiling.py`` (its Bayes ceiling known), then mmcli's default
pipeline (preprocess -> extract-features -> fuse -> train -> evaluate, no flags). Prints,
per seed:

- each column's test macro-F1 alone (a logistic regression on that column's fused block,
  its C chosen by 5-fold cross-validation on the train+val rows) beside that column's
  ceiling;
- every candidate ``--model auto`` tried, its val score (and K-fold score, when the val
  split is small enough that auto chose by cross-validation), and which it chose;
- the chosen model's test macro-F1 and accuracy, the ceiling's, and their ratio;
- scikit-learn's LogisticRegressionCV (C on a 10-value path, 5 folds on train+val) on the
  whole fused matrix, the baseline an expert writes in a few lines;
- with ``--e2e``, ``train --model e2e`` (default fusion) too;
- with ``--fusions``, each learned fusion over the fused blocks (``train --fusion X``).

Nothing is chosen on test rows: mmcli chooses on train+val, the baselines by
cross-validation on train+val; the test split is read once, to score.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import ceiling  # noqa: E402

from mmcli import api  # noqa: E402


def sklearn_scores(fused: Path, blocks: list[dict]) -> dict[str, float]:
    """Test macro-F1 of LogisticRegressionCV per block and on the whole matrix."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    x = np.load(fused / "X.npy")
    rows = pd.read_parquet(fused / "rows.parquet")
    y, split = rows["_target"].to_numpy(), rows["_split"].to_numpy()
    fit, test = split != "test", split == "test"
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    scores = {}
    parts = {b["name"]: (b["start"], b["stop"]) for b in blocks if b["name"] != "_present"}
    parts["all fused"] = (0, x.shape[1])
    for name, (a, b) in parts.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", FutureWarning)  # sklearn 1.8's changing defaults
            model = LogisticRegressionCV(Cs=10, cv=cv, scoring="neg_log_loss", max_iter=3000)
            model.fit(x[fit, a:b], y[fit])
        scores[name] = float(f1_score(y[test], model.predict(x[test, a:b]), average="macro"))
    return scores


#: The learned fusions ``train --fusion`` offers over a fuse artifact's blocks.
LEARNED = ("weighted-sum", "gated", "attention")


def run_seed(work: Path, rows: int, seed: int, classes: int, e2e: bool, fusions: bool) -> dict:
    data = work / f"set{seed}"
    manifest = ceiling.generate(data, rows, seed, classes)
    w = work / f"w{seed}"
    start = time.perf_counter()
    api.run_stage("preprocess", manifest=manifest, out=w / "prep")
    api.run_stage("extract-features", prep=w / "prep", out=w / "feats")
    api.run_stage("fuse", feats=w / "feats", out=w / "fused")
    api.run_stage("train", data=w / "fused", out=w / "model")
    api.run_stage("evaluate", model=w / "model", data=w / "fused", out=w / "eval")
    seconds = time.perf_counter() - start
    metrics = json.loads((w / "eval/metrics.json").read_text())
    model = json.loads((w / "model/mmcli.json").read_text())
    fused = json.loads((w / "fused/mmcli.json").read_text())
    test_ids = pd.read_parquet(w / "eval/predictions.parquet")["_id"].tolist()
    best = ceiling.ceiling(pd.read_csv(data / "truth.csv"), classes, test_ids)
    out = {
        "seed": seed,
        "ceiling": best,
        "macro_f1": metrics["macro_f1"],
        "accuracy": metrics["accuracy"],
        "candidates": model["info"]["candidates"] if "info" in model else model["candidates"],
        "sklearn": sklearn_scores(w / "fused", fused.get("info", fused)["blocks"]),
        "seconds": seconds,
    }
    if e2e:
        api.run_stage("train", data=w / "prep", out=w / "e2e", model="e2e")
        api.run_stage("evaluate", model=w / "e2e", data=w / "prep", out=w / "eval_e2e")
        out["e2e_macro_f1"] = json.loads((w / "eval_e2e/metrics.json").read_text())["macro_f1"]
    for fusion in LEARNED if fusions else ():
        api.run_stage("train", data=w / "fused", out=w / fusion, fusion=fusion)
        api.run_stage("evaluate", model=w / fusion, data=w / "fused", out=w / f"eval_{fusion}")
        metrics = json.loads((w / f"eval_{fusion}/metrics.json").read_text())
        out.setdefault("fusions", {})[fusion] = metrics["macro_f1"]
    return out


def report(r: dict) -> None:
    c = r["ceiling"]
    print(f"\nseed {r['seed']}  ({r['seconds']:.0f} s for the five stages)")
    print("  column alone (test macro-F1, sklearn LR-CV)  vs its ceiling")
    for m in ceiling.SHOW:
        print(f"    {m:<10} {r['sklearn'][m]:.3f}  vs {c[f'{m}_macro_f1']:.3f}")
    for m in ("size", "source"):
        print(f"    {m:<10} {r['sklearn'][m]:.3f}  (no information)")
    cands = ", ".join(
        f"{x['name']} {x['val_score']:.3f}"
        + (f" / cv {x['cv_score']:.3f}" if "cv_score" in x else "")
        + (" (chosen)" if x["chosen"] else "")
        for x in r["candidates"]
    )
    print(f"  candidates (val macro-F1 / cross-validated on train+val): {cands}")
    ratio = r["macro_f1"] / c["macro_f1"]
    print(
        f"  mmcli default: test macro-F1 {r['macro_f1']:.3f}  accuracy {r['accuracy']:.3f}"
        f"  ceiling {c['macro_f1']:.3f} / {c['accuracy']:.3f}  ratio {ratio:.3f}"
    )
    sk = r["sklearn"]["all fused"]
    print(f"  sklearn LogisticRegressionCV, all fused: {sk:.3f}  ratio {sk / c['macro_f1']:.3f}")
    if "e2e_macro_f1" in r:
        e = r["e2e_macro_f1"]
        print(f"  e2e (concat): test macro-F1 {e:.3f}  ratio {e / c['macro_f1']:.3f}")
    for fusion, f in r.get("fusions", {}).items():
        print(f"  --fusion {fusion}: test macro-F1 {f:.3f}  ratio {f / c['macro_f1']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["generated", "clips", "emoji"], default="generated")
    parser.add_argument("--data", type=Path, help="--set emoji: the folder realset.py built")
    parser.add_argument("--rows", type=int, help="default: 3000 (generated), 1000 (clips)")
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 10 11 12 (generated)")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--e2e", action="store_true")
    parser.add_argument("--fusions", action="store_true")
    args = parser.parse_args()
    if args.set == "clips":
        import clips

        return clips.run(args.rows or 1000, args.seeds or [0, 1, 2], args.classes, 0.8)
    if args.set == "emoji":
        import realset

        if args.data is None:
            parser.error("--set emoji needs --data DIR (python benchmarks/realset.py build DIR)")
        return realset.score(args.data, args.seeds or [0, 1, 2])
    args.rows, args.seeds = args.rows or 3000, args.seeds or [10, 11, 12]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            results.append(
                run_seed(Path(tmp), args.rows, seed, args.classes, args.e2e, args.fusions)
            )
            report(results[-1])
    ratios = [r["macro_f1"] / r["ceiling"]["macro_f1"] for r in results]
    sk = [r["sklearn"]["all fused"] / r["ceiling"]["macro_f1"] for r in results]
    print(
        f"\nmean ratio to the ceiling: mmcli {np.mean(ratios):.3f} (min {min(ratios):.3f}), "
        f"sklearn LR-CV {np.mean(sk):.3f}"
    )


if __name__ == "__main__":
    main()
