"""A tiny, seeded multimodal dataset written to disk for tests: each class has its own
image colour/stripe pattern, tone pitch, words and number range, plus noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image

CLASSES = ["cat", "dog", "owl"]
WORDS = {"cat": "purr whiskers", "dog": "bark fetch", "owl": "hoot night"}
FILLER = ["the", "a", "photo", "sound", "of", "seen", "today", "near", "house", "garden"]


def make_dataset(root: Path, n: int = 60, seed: int = 0, fmt: str = "csv") -> Path:
    """Write images/, audio/ and a manifest (csv, parquet or jsonl) under ``root``."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(exist_ok=True)
    rows = []
    for i in range(n):
        k = i % len(CLASSES)
        label = CLASSES[k]
        img = rng.integers(0, 60, size=(24, 24, 3)).astype(np.uint8)
        img[:, :, k] += 150  # class colour
        if k == 1:
            img[::4, :, :] = 255  # horizontal stripes
        Image.fromarray(img).save(root / "images" / f"{i:03d}.png")
        t = np.arange(8000) / 8000.0
        tone = 0.4 * np.sin(2 * np.pi * (300 + 250 * k) * t) + 0.05 * rng.standard_normal(8000)
        sf.write(root / "audio" / f"{i:03d}.wav", tone.astype(np.float32), 8000, subtype="PCM_16")
        words = list(rng.choice(FILLER, size=4)) + ([WORDS[label]] if rng.random() < 0.8 else [])
        rows.append(
            {
                "id": f"r{i:03d}",
                "image": f"images/{i:03d}.png",
                "audio": f"audio/{i:03d}.wav",
                "caption": " ".join(words),
                "weight": float(np.round(k + rng.normal(0, 0.7), 3)),
                "colour": str(rng.choice(["red", "green"])),
                "label": label,
            }
        )
    df = pd.DataFrame(rows)
    path = root / f"manifest.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True)
    return path
