"""Video clips whose picture, soundtrack and caption each show the class 80% of the time.

    python benchmarks/clips.py [--rows 1000] [--seeds 0 1 2] [--classes 5] [--show 0.8]

The generator is ``ceiling.py``'s, in motion: each row draws its class from imbalanced
priors, then the picture, the soundtrack and the caption each independently show the
true class with probability ``--show``, else a uniformly drawn one. A clip (1 s, 8 fps,
32x32, H.264 + AAC) shows the shown class's shape and hue drifting across a noisy
background, with a tone at its pitch; the caption is a keyword among filler words. The
Bayes ceiling comes from the same likelihoods.

Per seed, mmcli's default pipeline (preprocess -> extract-features -> fuse -> train ->
evaluate, no flags): each part's score alone (a logistic regression on its fused
block, C by 5-fold CV on train+val), every candidate of ``--model auto``, the test
macro-F1 and accuracy beside the ceiling's. Nothing is chosen on test rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import ceiling  # noqa: E402
from quality import sklearn_scores  # noqa: E402
from videogen import write_clip  # noqa: E402

FRAMES, FPS = 8, 8


def clip_frames(k: int, rng: np.random.Generator) -> np.ndarray:
    """(FRAMES, 32, 32, 3): ``ceiling.draw_image``'s picture of class k, drifting."""
    still = np.asarray(ceiling.draw_image(k, rng), np.float32)
    step = rng.integers(-2, 3, size=2)
    frames = np.empty((FRAMES, 32, 32, 3), np.uint8)
    for t in range(FRAMES):
        moved = np.roll(still, shift=(int(step[0] * t), int(step[1] * t)), axis=(0, 1))
        frames[t] = np.clip(moved + rng.normal(0, 10, moved.shape), 0, 255).astype(np.uint8)
    return frames


def generate(out: Path, rows: int, seed: int, classes: int, show: dict[str, float]) -> Path:
    rng = np.random.default_rng(seed)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    records, truth = [], []
    for i in range(rows):
        k = int(rng.choice(classes, p=ceiling.priors(classes)))
        shown = {
            m: k if rng.random() < p else int(rng.integers(0, classes)) for m, p in show.items()
        }
        name = f"clips/{i:05d}.mp4"
        sound = ceiling.make_audio(shown["clip.audio"], rng)
        write_clip(out / name, clip_frames(shown["clip"], rng), FPS, sound, ceiling.RATE)
        records.append(
            {"id": f"v{i:05d}", "clip": name, "caption": ceiling.make_text(shown["caption"], rng),
             "label": f"class_{k}"}
        )  # fmt: skip
        truth.append({"id": f"v{i:05d}", "label": k, **{f"shown_{m}": s for m, s in shown.items()}})
    pd.DataFrame(truth).to_csv(out / "truth.csv", index=False)
    pd.DataFrame(records).to_csv(out / "manifest.csv", index=False)
    return out / "manifest.csv"


def run_seed(work: Path, rows: int, seed: int, classes: int, show: dict[str, float]) -> dict:
    from mmcli import api

    manifest = generate(work / f"set{seed}", rows, seed, classes, show)
    w = work / f"w{seed}"
    api.run_stage("preprocess", manifest=manifest, out=w / "prep")
    api.run_stage("extract-features", prep=w / "prep", out=w / "feats")
    api.run_stage("fuse", feats=w / "feats", out=w / "fused")
    trained = api.run_stage("train", data=w / "fused", out=w / "model")
    api.run_stage("evaluate", model=w / "model", data=w / "fused", out=w / "eval")
    metrics = json.loads((w / "eval/metrics.json").read_text())
    test_ids = pd.read_parquet(w / "eval/predictions.parquet")["_id"].tolist()
    truth = pd.read_csv(work / f"set{seed}" / "truth.csv")
    blocks = [b.model_dump() for b in api.load(w / "fused").record.blocks]
    return {
        "seed": seed,
        "ceiling": ceiling.ceiling(truth, classes, test_ids, show),
        "macro_f1": metrics["macro_f1"],
        "accuracy": metrics["accuracy"],
        "candidates": trained.get("candidates", {}),
        "chosen": trained.get("chosen"),
        "chosen_on": trained.get("chosen_on"),
        "columns": sklearn_scores(w / "fused", blocks),
    }


def report(r: dict, show: dict[str, float]) -> None:
    c = r["ceiling"]
    print(f"\nseed {r['seed']}")
    for m in show:
        print(f"  {m:<11} alone {r['columns'][m]:.3f}  vs its ceiling {c[f'{m}_macro_f1']:.3f}")
    cands = ", ".join(f"{k} {v:.3f}" for k, v in r["candidates"].items())
    print(f"  candidates (macro-F1, {r['chosen_on']}): {cands}; chose {r['chosen']}")
    print(
        f"  mmcli default: test macro-F1 {r['macro_f1']:.3f}  accuracy {r['accuracy']:.3f}"
        f"  ceiling {c['macro_f1']:.3f} / {c['accuracy']:.3f}"
        f"  ratio {r['macro_f1'] / c['macro_f1']:.3f}"
    )


def run(rows: int, seeds: list[int], classes: int, show_p: float) -> None:
    """Every seed's set, scored and printed, then the means."""
    show = {"clip": show_p, "clip.audio": show_p, "caption": show_p}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            results.append(run_seed(Path(tmp), rows, seed, classes, show))
            report(results[-1], show)
    f1 = [r["macro_f1"] for r in results]
    ratios = [r["macro_f1"] / r["ceiling"]["macro_f1"] for r in results]
    print(f"\nmean test macro-F1 {np.mean(f1):.3f} (min {min(f1):.3f}); ratio to the ceiling "
          f"{np.mean(ratios):.3f} (min {min(ratios):.3f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--show", type=float, default=0.8)
    args = parser.parse_args()
    run(args.rows, args.seeds, args.classes, args.show)


if __name__ == "__main__":
    main()
