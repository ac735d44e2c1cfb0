"""A seeded image+text+audio classification set whose best possible score is known.

    python benchmarks/ceiling.py OUT_DIR [--rows 2000] [--seed 0] [--classes 5]

Each row draws its class from imbalanced priors. Each modality then independently *shows*
a class: the true one with probability ``SHOW[m]``, else one drawn uniformly (which may be
the true one again). What a modality shows is drawn clearly enough for a good reader:

- image: a 32x32 shape whose form and hue belong to the shown class, at a random place and
  size, on a random dark background, with pixel noise;
- text: one of the shown class's keywords among six filler words, in a random order;
- audio: a 1 s tone at the shown class's pitch, at a random level, in noise.

A ``size`` number and a ``source`` category carry no information at all. The generator's
likelihoods give the Bayes posterior of every row, P(k | shown) ~ prior(k) * prod_m
(SHOW[m] [shown_m = k] + (1 - SHOW[m]) / K), and its argmax is the best any model can do
from these inputs (``ceiling``); ``truth.csv`` (beside the manifest, never read by mmcli)
holds what each modality showed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image, ImageDraw

SHAPES = ["ellipse", "rectangle", "triangle", "cross", "diamond", "ring", "bar"]
HUES = [0, 50, 100, 150, 200, 250, 300]  # degrees, one per class
KEYWORDS = [
    ["river", "boat", "harbour"],
    ["forest", "tree", "leaf"],
    ["city", "street", "tower"],
    ["desert", "sand", "dune"],
    ["mountain", "snow", "peak"],
    ["field", "grass", "farm"],
    ["ocean", "wave", "reef"],
]
FILLER = "the a of near with under bright dark small large old new quiet loud far".split()
PITCH = [220, 330, 440, 587, 784, 988, 1319]  # Hz, one per class
RATE = 8000
#: Probability that each modality shows the true class (else a uniformly drawn one).
SHOW = {"image": 0.55, "text": 0.45, "audio": 0.5}
PRIORS = [0.34, 0.24, 0.18, 0.14, 0.10, 0.06, 0.04]


def priors(classes: int) -> np.ndarray:
    p = np.array(PRIORS[:classes])
    return p / p.sum()


def _hsv(hue: float, rng: np.random.Generator) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(hue / 360, rng.uniform(0.6, 1.0), rng.uniform(0.7, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def draw_image(k: int, rng: np.random.Generator) -> Image.Image:
    img = Image.new("RGB", (32, 32), tuple(int(v) for v in rng.integers(0, 70, 3)))
    draw = ImageDraw.Draw(img)
    colour = _hsv(HUES[k] + rng.uniform(-12, 12), rng)
    x0, y0 = (int(v) for v in rng.integers(1, 9, 2))
    x1, y1 = (int(v) for v in rng.integers(23, 31, 2))
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    shape = SHAPES[k]
    if shape == "ellipse":
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    elif shape == "rectangle":
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    elif shape == "triangle":
        draw.polygon([(x0, y1), (cx, y0), (x1, y1)], fill=colour)
    elif shape == "cross":
        draw.line((x0, y0, x1, y1), fill=colour, width=4)
        draw.line((x0, y1, x1, y0), fill=colour, width=4)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=colour)
    elif shape == "ring":
        draw.ellipse((x0, y0, x1, y1), outline=colour, width=4)
    else:  # bar
        draw.rectangle((x0, cy - 3, x1, cy + 3), fill=colour)
    arr = np.asarray(img, np.float32) + rng.normal(0, 25, (32, 32, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_text(k: int, rng: np.random.Generator) -> str:
    words = [str(w) for w in rng.choice(FILLER, size=6)]
    words.insert(int(rng.integers(0, 7)), str(rng.choice(KEYWORDS[k])))
    return " ".join(words)


def make_audio(k: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(RATE) / RATE
    tone = np.sin(2 * np.pi * PITCH[k] * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.2, 0.4)
    return np.clip(tone + rng.normal(0, 0.3, RATE), -1, 1).astype(np.float32) * 0.7


def _log_likelihood(shown: np.ndarray, p: float, classes: int) -> np.ndarray:
    """log P(modality shows ``shown`` | class k), (rows, classes)."""
    like = np.full((len(shown), classes), (1 - p) / classes)
    like[np.arange(len(shown)), shown] += p
    return np.log(like)


def posterior(
    shown: np.ndarray,
    classes: int,
    modalities: list[int] | None = None,
    show: dict[str, float] = SHOW,
) -> np.ndarray:
    """P(class | what the modalities showed), (rows, classes), from the generator's rules
    (``show``: each modality's probability of showing the true class); ``modalities``
    picks the columns of ``shown`` used (all by default)."""
    post = np.tile(np.log(priors(classes)), (len(shown), 1))
    for j, p in enumerate(show.values()):
        if modalities is None or j in modalities:
            post += _log_likelihood(shown[:, j], p, classes)
    post = np.exp(post - post.max(axis=1, keepdims=True))
    return post / post.sum(axis=1, keepdims=True)


def generate(out: Path, rows: int, seed: int = 0, classes: int = 5) -> Path:
    """Write OUT/manifest.csv, OUT/truth.csv, OUT/images/, OUT/audio/; return the manifest."""
    if not 2 <= classes <= len(SHAPES):
        raise ValueError(f"classes must be 2..{len(SHAPES)}")
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(exist_ok=True)
    records, truth = [], []
    for i in range(rows):
        k = int(rng.choice(classes, p=priors(classes)))
        shown = {
            m: k if rng.random() < p else int(rng.integers(0, classes)) for m, p in SHOW.items()
        }
        draw_image(shown["image"], rng).save(out / "images" / f"{i:06d}.png")
        sf.write(out / "audio" / f"{i:06d}.wav", make_audio(shown["audio"], rng), RATE, "PCM_16")
        records.append(
            {
                "id": f"c{i:06d}",
                "image": f"images/{i:06d}.png",
                "audio": f"audio/{i:06d}.wav",
                "text": make_text(shown["text"], rng),
                "size": round(float(rng.normal(0, 1)), 3),
                "source": str(rng.choice(["web", "phone", "camera"])),
                "label": f"class_{k}",
            }
        )
        truth.append({"id": f"c{i:06d}", "label": k, **{f"shown_{m}": s for m, s in shown.items()}})
    pd.DataFrame(truth).to_csv(out / "truth.csv", index=False)
    manifest = out / "manifest.csv"
    pd.DataFrame(records).to_csv(manifest, index=False)
    return manifest


def ceiling(
    truth: pd.DataFrame,
    classes: int,
    ids: list[str] | None = None,
    show: dict[str, float] = SHOW,
) -> dict[str, float]:
    """Macro-F1 and accuracy of the Bayes decision (all modalities, and each alone)."""
    from sklearn.metrics import accuracy_score, f1_score

    if ids is not None:
        truth = truth.set_index("id").loc[ids].reset_index()
    shown = truth[[f"shown_{m}" for m in show]].to_numpy()
    y = truth["label"].to_numpy()
    best = posterior(shown, classes, show=show).argmax(axis=1)
    scores = {
        "macro_f1": float(f1_score(y, best, average="macro", labels=range(classes))),
        "accuracy": float(accuracy_score(y, best)),
    }
    for j, m in enumerate(show):
        alone = posterior(shown, classes, [j], show).argmax(axis=1)
        scores[f"{m}_macro_f1"] = float(f1_score(y, alone, average="macro", labels=range(classes)))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", type=int, default=5)
    args = parser.parse_args()
    manifest = generate(args.out, args.rows, args.seed, args.classes)
    print(manifest)
    print(ceiling(pd.read_csv(args.out / "truth.csv"), args.classes))


if __name__ == "__main__":
    main()
