"""Generate a multimodal classification data set of any size, seeded.

    python benchmarks/generate.py OUT_DIR --rows 2000 [--seed 0] [--classes 4]

Each row has a 32x32 PNG (a class-specific shape in a random colour), a 1 s 8 kHz WAV
(a class-specific two-tone pattern), a sentence (class keywords among filler words), a
number and a category. As in real collections, one of image and audio is often ruined
for a row (noise only), so each modality alone is imperfect and fusion pays off.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image, ImageDraw

SHAPES = ["ellipse", "rectangle", "triangle", "cross", "diamond", "ring"]
KEYWORDS = [
    ["river", "boat"],
    ["forest", "tree"],
    ["city", "street"],
    ["desert", "sand"],
    ["mountain", "snow"],
    ["field", "grass"],
]
FILLER = "the a of near with under bright dark small large old new quiet loud".split()
RATE = 8000


def _image(shape: str, rng: np.random.Generator) -> Image.Image:
    """A filled shape (or none, for a failed camera) on a dark background, with noise."""
    img = Image.new("RGB", (32, 32), tuple(int(v) for v in rng.integers(0, 80, 3)))
    draw = ImageDraw.Draw(img)
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    x0, y0 = (int(v) for v in rng.integers(2, 10, 2))
    x1, y1 = (int(v) for v in rng.integers(22, 30, 2))
    if shape == "ellipse":
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    elif shape == "rectangle":
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    elif shape == "triangle":
        draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
    elif shape == "cross":
        draw.line((x0, y0, x1, y1), fill=colour, width=4)
        draw.line((x0, y1, x1, y0), fill=colour, width=4)
    elif shape == "diamond":
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=colour)
    elif shape == "ring":
        draw.ellipse((x0, y0, x1, y1), outline=colour, width=4)
    arr = np.asarray(img, np.float32) + rng.normal(0, 60, (32, 32, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _audio(k: int, rng: np.random.Generator, ruined: bool) -> np.ndarray:
    t = np.arange(RATE) / RATE
    f1, f2 = 300 + 120 * k, 900 - 80 * k
    half = t < rng.uniform(0.3, 0.7)
    wave = np.where(half, np.sin(2 * np.pi * f1 * t), np.sin(2 * np.pi * f2 * t)) * 0.3
    if ruined:  # a failed microphone records only noise
        wave = np.zeros_like(wave)
    noise = rng.normal(0, 0.6, RATE)
    return np.clip(wave + noise, -1, 1).astype(np.float32) * 0.5


def generate(out: Path, rows: int, seed: int = 0, classes: int = 4) -> Path:
    """Write OUT/manifest.csv, OUT/images/, OUT/audio/; returns the manifest path."""
    if not 2 <= classes <= len(SHAPES):
        raise ValueError(f"classes must be 2..{len(SHAPES)}")
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(exist_ok=True)
    records = []
    for i in range(rows):
        k = int(rng.integers(0, classes))
        ruined = rng.choice(["image", "audio", "none"], p=[0.4, 0.4, 0.2])
        # a failed camera shows no shape at all, only noise
        _image(SHAPES[k] if ruined != "image" else "none", rng).save(
            out / "images" / f"{i:06d}.png"
        )
        sf.write(
            out / "audio" / f"{i:06d}.wav",
            _audio(k, rng, ruined == "audio"),
            RATE,
            subtype="PCM_16",
        )
        words = list(rng.choice(FILLER, size=6))
        if rng.random() < 0.5:  # the keyword is there only half the time
            words.insert(int(rng.integers(0, 6)), str(rng.choice(KEYWORDS[k])))
        records.append(
            {
                "id": f"g{i:06d}",
                "image": f"images/{i:06d}.png",
                "audio": f"audio/{i:06d}.wav",
                "text": " ".join(words),
                "size": round(float(k + rng.normal(0, 1.5)), 3),
                "source": str(rng.choice(["web", "phone", "camera"])),
                "label": f"class_{k}",
            }
        )
    manifest = out / "manifest.csv"
    pd.DataFrame(records).to_csv(manifest, index=False)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", type=int, default=4)
    args = parser.parse_args()
    print(generate(args.out, args.rows, args.seed, args.classes))


if __name__ == "__main__":
    main()
