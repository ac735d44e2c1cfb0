"""Real media: emoji art by three artists, their Unicode names, and those names spoken.

    python benchmarks/realset.py build DIR [--speech]   # needs npm; --speech: espeak-ng
    python benchmarks/realset.py score DIR [--seeds 0 1 2] [--no-pretrained]

**build** fetches ``emoji-datasource-google``, ``-twitter`` and ``-facebook`` (16.0.0) from
the npm registry with ``npm pack``, as pip fetches a wheel: each package carries one
artist's 64 px PNG of every emoji and ``emoji.json`` (name, category). Nothing is
downloaded when mmcli runs. One row per emoji that Google and Twitter both drew (the
"Component" category of bare skin tones left out): 9 classes, the Unicode category
(People & Body 386 rows ... Activities 85: imbalanced), with

- ``image``: Google's drawing;
- ``text``: the emoji's Unicode name, lower-cased ("grinning face with smiling eyes");
- ``audio`` (``--speech``): espeak-ng reading the name, voice, speed and pitch drawn per
  row (Debian's ``espeak-ng``);
- ``cross.csv``: the same rows with Twitter's drawing, for a cross-artist score.

**score**, per seed: a stratified 70/15/15 split (a ``split`` column), then mmcli's
default pipeline with the pretrained encoders (preprocess at 224 px, extract-features
with efficientnet-lite0, minilm and resemblyzer; fuse, train, evaluate with no flags),
and ``evaluate MODEL cross.csv`` on the test rows drawn by Twitter. Against it, the best
scikit-learn model on the same frozen features (extract-features' output, each block
standardised): logistic regression and an RBF SVM, each tuned by 5-fold
cross-validation on the train+val rows, the one with the better CV score scored on
test. Nothing is chosen on test rows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ARTISTS = ("google", "twitter", "facebook")
VERSION = "16.0.0"


def _pack(artist: str, into: Path) -> Path:
    name = f"emoji-datasource-{artist}"
    tgz = into / f"{name}-{VERSION}.tgz"
    if not tgz.exists():
        subprocess.run(
            ["npm", "pack", f"{name}@{VERSION}", "--silent"],
            cwd=into,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return tgz


def build(out: Path, speech: bool, seed: int = 0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    packs = out / "npm"
    packs.mkdir(exist_ok=True)
    emoji = None
    for artist in ARTISTS[:2]:
        with tarfile.open(_pack(artist, packs)) as tar:
            if emoji is None:
                emoji = json.load(tar.extractfile("package/emoji.json"))
            folder = out / artist
            folder.mkdir(exist_ok=True)
            for member in tar.getmembers():
                if member.name.startswith(f"package/img/{artist}/64/") and member.isfile():
                    (folder / Path(member.name).name).write_bytes(tar.extractfile(member).read())
    rows = [
        {
            "id": e["unified"].lower(),
            "image": f"google/{e['image']}",
            "text": e["name"].lower(),
            "label": e["category"],
        }
        for e in emoji
        if e["category"] != "Component"
        and e["has_img_google"]
        and e["has_img_twitter"]
        and (out / "google" / e["image"]).is_file()
        and (out / "twitter" / e["image"]).is_file()
    ]
    table = pd.DataFrame(rows).sort_values("id").reset_index(drop=True)
    if speech:
        table["audio"] = _speak(table, out / "speech", seed)
    table.to_csv(out / "emoji.csv", index=False)
    cross = table.assign(image=table["image"].str.replace("google/", "twitter/", regex=False))
    cross.to_csv(out / "cross.csv", index=False)
    counts = table["label"].value_counts()
    print(
        f"{len(table)} rows, {len(counts)} classes: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )


def _speak(table: pd.DataFrame, folder: Path, seed: int) -> list[str]:
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    voices = ["en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en+f3", "en+m3", "en+f4"]
    paths = []
    for row in table.itertuples():
        path = folder / f"{row.id}.wav"
        voice = voices[rng.integers(len(voices))]
        speed, pitch = int(rng.integers(140, 220)), int(rng.integers(20, 80))
        if not path.exists():
            subprocess.run(
                [
                    "espeak-ng",
                    "-v",
                    voice,
                    "-s",
                    str(speed),
                    "-p",
                    str(pitch),
                    "-w",
                    str(path),
                    row.text,
                ],
                check=True,
            )
        paths.append(f"speech/{path.name}")
    return paths


def _with_split(data: Path, seed: int, work: Path) -> tuple[Path, Path]:
    """The set's tables, copied beside its media with a seeded stratified split column."""
    from sklearn.model_selection import train_test_split

    table = pd.read_csv(data / "emoji.csv")
    rest, test = train_test_split(
        table.index, test_size=0.15, stratify=table["label"], random_state=seed
    )
    train, val = train_test_split(
        rest, test_size=0.15 / 0.85, stratify=table.loc[rest, "label"], random_state=seed
    )
    split = pd.Series("train", index=table.index)
    split[val], split[test] = "val", "test"
    manifest = data / f"emoji-seed{seed}.csv"
    table.assign(split=split).to_csv(manifest, index=False)
    cross = pd.read_csv(data / "cross.csv").loc[np.sort(test)]
    cross_test = data / f"cross-test-seed{seed}.csv"
    cross.to_csv(cross_test, index=False)
    return manifest, cross_test


def sklearn_best(feats: Path) -> dict:
    """Logistic regression and an RBF SVM, each tuned by 5-fold CV on train+val; the better
    CV score is scored on test."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x, y, split = _features(feats)
    fit, test = split != "test", split == "test"
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    grids = {
        "logistic": (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
            {"logisticregression__C": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]},
        ),
        "svm-rbf": (
            make_pipeline(StandardScaler(), SVC()),
            {"svc__C": [1, 3, 10, 30], "svc__gamma": ["scale", 0.3 / x.shape[1], 3 / x.shape[1]]},
        ),
    }
    results = {}
    for name, (model, grid) in grids.items():
        search = GridSearchCV(model, grid, scoring="f1_macro", cv=cv, n_jobs=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(x[fit], y[fit])
        predicted = search.predict(x[test])
        results[name] = {
            "cv": float(search.best_score_),
            "test": float(f1_score(y[test], predicted, average="macro")),
            "params": search.best_params_,
        }
    best = max(results, key=lambda n: results[n]["cv"])
    return {"models": results, "chosen": best, "test": results[best]["test"]}


def _features(feats: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """extract-features' frozen features, side by side (missing rows zero), and labels."""
    from mmcli import api

    art = api.load(feats)
    rows = art.table("rows.parquet")
    blocks = []
    for column in art.record.columns:
        block = np.load(feats / column.features, mmap_mode="r").astype(np.float64)
        blocks.append(np.nan_to_num(block))
    return np.hstack(blocks), rows["_target"].to_numpy(), rows["_split"].to_numpy()


def score_seed(data: Path, seed: int, pretrained: bool, work: Path) -> dict:
    from mmcli import api

    manifest, cross = _with_split(data, seed, work)
    w = work / f"seed{seed}"
    start = time.perf_counter()
    encoders = {"image": "efficientnet-lite0", "text": "minilm", "audio": "resemblyzer"}
    if not pretrained:
        encoders = {}
    has_audio = "audio" in pd.read_csv(manifest, nrows=1).columns
    if not has_audio:
        encoders.pop("audio", None)
    api.run_stage(
        "preprocess", manifest=manifest, out=w / "prep", image_size=224 if pretrained else 64
    )
    api.run_stage("extract-features", prep=w / "prep", out=w / "feats", **encoders)
    api.run_stage("fuse", feats=w / "feats", out=w / "fused")
    trained = api.run_stage("train", data=w / "fused", out=w / "model")
    api.run_stage("evaluate", model=w / "model", data=w / "fused", out=w / "eval")
    api.run_stage("evaluate", model=w / "model", data=cross, out=w / "eval-cross")
    metrics = json.loads((w / "eval/metrics.json").read_text())
    cross_metrics = json.loads((w / "eval-cross/metrics.json").read_text())
    return {
        "seed": seed,
        "seconds": time.perf_counter() - start,
        "candidates": trained.get("candidates"),
        "chosen": trained.get("chosen"),
        "chosen_on": trained.get("chosen_on"),
        "macro_f1": metrics["macro_f1"],
        "accuracy": metrics["accuracy"],
        "cross_macro_f1": cross_metrics["macro_f1"],
        "columns": _column_scores(w / "fused"),
        "sklearn": sklearn_best(w / "feats"),
    }


def _column_scores(fused: Path) -> dict[str, float]:
    """Each column alone: logistic regression (C by 5-fold CV on train+val) on its block."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    from mmcli import api

    art = api.load(fused)
    x = np.load(fused / "X.npy")
    rows = art.table("rows.parquet")
    y, split = rows["_target"].to_numpy(), rows["_split"].to_numpy()
    fit, test = split != "test", split == "test"
    out = {}
    for block in art.record.blocks:
        if block.name == "_present":
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", FutureWarning)
            model = LogisticRegressionCV(
                Cs=8, cv=StratifiedKFold(5, shuffle=True, random_state=0), max_iter=3000
            )
            model.fit(x[fit, block.start : block.stop], y[fit])
        predicted = model.predict(x[test, block.start : block.stop])
        out[block.name] = float(f1_score(y[test], predicted, average="macro"))
    return out


def report(r: dict) -> None:
    print(f"\nseed {r['seed']}  ({r['seconds']:.0f} s for the stages)")
    print(
        "  each column alone (test macro-F1): "
        + ", ".join(f"{k} {v:.3f}" for k, v in r["columns"].items())
    )
    if r["candidates"]:
        print(
            f"  candidates (macro-F1, {r['chosen_on']}): "
            + ", ".join(f"{k} {v:.3f}" for k, v in r["candidates"].items())
            + f"; chose {r['chosen']}"
        )
    print(
        f"  mmcli default: test macro-F1 {r['macro_f1']:.3f}  accuracy {r['accuracy']:.3f}"
        f"  cross-artist (Twitter's art) {r['cross_macro_f1']:.3f}"
    )
    sk = r["sklearn"]
    for name, m in sk["models"].items():
        print(f"  sklearn {name:<9} CV {m['cv']:.3f}  test {m['test']:.3f}  {m['params']}")
    print(
        f"  sklearn, chosen by CV ({sk['chosen']}): test {sk['test']:.3f}"
        f"   mmcli - sklearn {r['macro_f1'] - sk['test']:+.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("dir", type=Path)
    b.add_argument("--speech", action="store_true")
    s = sub.add_parser("score")
    s.add_argument("dir", type=Path)
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    s.add_argument("--no-pretrained", action="store_true")
    args = parser.parse_args()
    if args.command == "build":
        if shutil.which("npm") is None:
            sys.exit("build needs npm (apt-get install npm)")
        if args.speech and shutil.which("espeak-ng") is None:
            sys.exit("--speech needs espeak-ng (apt-get install espeak-ng)")
        build(args.dir, args.speech)
        return
    score(args.dir, args.seeds, not args.no_pretrained)


def score(data: Path, seeds: list[int], pretrained: bool = True) -> None:
    """Every seed's split scored and printed, then the means."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            results.append(score_seed(data, seed, pretrained, Path(tmp)))
            report(results[-1])
    gaps = [r["macro_f1"] - r["sklearn"]["test"] for r in results]
    print(
        f"\nmean test macro-F1: mmcli {np.mean([r['macro_f1'] for r in results]):.3f}, "
        f"sklearn (CV-chosen) {np.mean([r['sklearn']['test'] for r in results]):.3f}, "
        f"gap {np.mean(gaps):+.3f} (min {min(gaps):+.3f}); cross-artist "
        f"{np.mean([r['cross_macro_f1'] for r in results]):.3f}"
    )


if __name__ == "__main__":
    main()
