"""Rebuild sample_data/: an AV-MNIST-style set (a handwritten digit, the same digit spoken,
a short note, two tabular columns) where every modality alone is weak and together strong.

Needs: `apt-get install espeak-ng` (speech) and the project installed (numpy, pillow,
soundfile, soxr, scikit-learn). Deterministic: the same seed rebuilds the same files.

    python scripts/build_sample_data.py            # writes sample_data/
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr
from PIL import Image
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parents[1] / "sample_data"
SEED = 7
PER_CLASS = 40
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
VOICES = [
    "en",
    "en-us",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-029",
    "en+f3",
    "en+m3",
    "en+f2",
    "en-us+f4",
    "en-gb-x-gbclan",
]
RATE = 8000
SECONDS = 0.6
# Notes give partial, sometimes wrong, hints: parity or size, never the digit itself.
HINTS = {
    "even": ["an even number", "divisible by two", "the clerk wrote: even"],
    "odd": ["an odd number", "not divisible by two", "the clerk wrote: odd"],
    "small": ["a small digit", "less than five", "low value on the form"],
    "large": ["a large digit", "five or more", "high value on the form"],
    "none": [
        "scanned from a paper form",
        "copied from an old ledger",
        "no remark",
        "entered by hand at the desk",
    ],
}


def hint_for(digit: int, rng: np.random.Generator) -> str:
    kind = rng.choice(["parity", "size", "none"], p=[0.4, 0.4, 0.2])
    wrong = rng.random() < 0.15
    if kind == "parity":
        key = "even" if (digit % 2 == 0) != wrong else "odd"
    elif kind == "size":
        key = "small" if (digit < 5) != wrong else "large"
    else:
        key = "none"
    return str(rng.choice(HINTS[key]))


def degrade_image(pixels: np.ndarray, rng: np.random.Generator, heavy: bool) -> Image.Image:
    """8x8 digit (0..16) -> 32x32 greyscale with an occluding block and noise."""
    img = Image.fromarray((pixels * 255 / 16).astype(np.uint8)).resize(
        (32, 32), Image.Resampling.BILINEAR
    )
    arr = np.asarray(img, np.float32)
    size = int(rng.integers(18, 24) if heavy else rng.integers(6, 10))
    y, x = rng.integers(0, 32 - size, size=2)
    arr[y : y + size, x : x + size] = rng.uniform(0, 255)
    arr += rng.normal(0, 110 if heavy else 30, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")


def speak(word: str, rng: np.random.Generator, heavy: bool) -> np.ndarray:
    """The word from espeak-ng with a random voice, speed and pitch, at 8 kHz, in noise."""
    voice = str(rng.choice(VOICES))
    speed = int(rng.integers(170, 250))
    pitch = int(rng.integers(20, 80))
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
        capture_output=True,
        check=True,
    ).stdout
    y, rate = sf.read(io.BytesIO(wav), dtype="float32")
    y = soxr.resample(y, rate, RATE)
    y = y / (np.abs(y).max() + 1e-9) * 0.5
    length = int(RATE * SECONDS)
    clip = np.zeros(length, np.float32)  # the word at a random offset
    start = int(rng.integers(0, max(1, length - len(y))))
    clip[start : start + len(y)] = y[: length - start]
    noise = rng.normal(0, 1, length).astype(np.float32)
    snr_db = rng.uniform(-20, -16) if heavy else rng.uniform(-3, 3)
    noise *= np.sqrt(np.mean(y**2) / (10 ** (snr_db / 10)) / np.mean(noise**2))
    # Quiet overall level: FLAC stores quiet noise in fewer bits.
    return np.clip(clip + noise, -1, 1) * 0.25


def main() -> int:
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is missing: apt-get install espeak-ng", file=sys.stderr)
        return 1
    rng = np.random.default_rng(SEED)
    digits = load_digits()
    shutil.rmtree(OUT / "images", ignore_errors=True)
    shutil.rmtree(OUT / "audio", ignore_errors=True)
    (OUT / "images").mkdir(parents=True)
    (OUT / "audio").mkdir()
    rows = []
    for digit in range(10):
        pool = np.flatnonzero(digits.target == digit)
        for k, index in enumerate(rng.choice(pool, size=PER_CLASS, replace=False)):
            sid = f"d{digit}_{k:02d}"
            # Like a real sensor failure, one of image and speech is often near-unreadable:
            # each alone is right only part of the time, together they cover each other.
            bad = rng.choice(["image", "audio", "neither"], p=[0.4, 0.4, 0.2])
            degrade_image(digits.images[index], rng, bad == "image").save(
                OUT / "images" / f"{sid}.png", optimize=True
            )
            audio = f"audio/{sid}.flac"
            if rng.random() < 0.02:
                audio = ""  # a missing recording: a missing modality, not an error
            else:
                sf.write(
                    OUT / audio,
                    speak(NAMES[digit], rng, bad == "audio"),
                    RATE,
                    format="FLAC",
                    subtype="PCM_16",
                )
            text = "" if rng.random() < 0.03 else hint_for(digit, rng)
            ink = float((digits.images[index] > 8).mean())
            rows.append(
                {
                    "id": sid,
                    "image": f"images/{sid}.png",
                    "audio": audio,
                    "text": text,
                    "pen_pressure": round(ink * 3 + rng.normal(0, 0.3), 3),
                    "scanner": str(rng.choice(["north", "south", "east"])),
                    "label": NAMES[digit],
                }
            )
    order = rng.permutation(len(rows))
    pd.DataFrame([rows[i] for i in order]).to_csv(OUT / "manifest.csv", index=False)
    print(f"wrote {len(rows)} rows to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
