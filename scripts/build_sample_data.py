"""Rebuild sample_data/: a small AV-MNIST-style set for the README demo.

Each of the 400 rows (40 per digit 0-9) is one digit seen several ways, none of them
reliable alone:

- image: a handwritten digit from scikit-learn's bundled ``load_digits`` (UCI Optical
  Recognition of Handwritten Digits, CC BY 4.0), 8x8 upscaled to 32x32 greyscale PNG,
  with a seeded occluding block and pixel noise;
- audio: the digit's English name spoken by espeak-ng (varied voice, speed, pitch),
  0.5 s, 8 kHz mono 16-bit PCM WAV, with seeded background noise;
- text: a short note with partial hints (parity, size, loop, prime), sometimes wrong;
- pen_pressure: a noisy function of how much ink the digit has;
- scanner: a category that is pure noise.

In 45% of the rows the image is nearly unreadable and in another 45% the
speech is (a sensor failure, as in real collections), so each modality alone is right
only part of the time while together they cover each other.  About 3% of rows have an
empty text cell and 2% an empty audio cell (missing modality, no file written).

Needs (Debian/Ubuntu):

    apt-get install espeak-ng
    pip install numpy pandas pillow soundfile soxr scikit-learn

(all but espeak-ng come with the project: ``pip install -e .``).  Then

    python scripts/build_sample_data.py        # rewrites sample_data/

The script is seeded: with the same versions of espeak-ng, scikit-learn, soxr, Pillow and
libsndfile it rebuilds byte-identical files.
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
SEED = 20240611
PER_CLASS = 40
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# English voices shipped with Debian's espeak-ng (`espeak-ng --voices=en`), some with
# a voice variant (+f2, +m3 ...) for other speakers.
VOICES = [
    "en",
    "en-us",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-029",
    "en+f2",
    "en+f3",
    "en+m3",
    "en-us+f4",
    "en-us+m7",
    "en-gb-x-rp+f5",
]
RATE = 8000  # Hz, stored sample rate
CLIP_SECONDS = 0.5  # every clip is exactly this long; a word too slow is re-spoken faster
SPEED = (165, 260)  # espeak-ng words per minute
PITCH = (15, 85)  # espeak-ng pitch, 0..99
IMAGE_SIZE = 32

# Per row, which sensor "failed": its reading is nearly unreadable.
FAILURE = {"image": 0.45, "audio": 0.45, "none": 0.1}
# Image: occluding block side (pixels of 32) and Gaussian noise (grey levels of 255).
IMAGE_OK = {"block": (4, 9), "noise": 30.0}
IMAGE_BAD = {"block": (26, 32), "noise": 160.0}
# Audio: signal-to-noise ratio of the white background noise, in dB.
AUDIO_OK_SNR = (8.0, 20.0)
AUDIO_BAD_SNR = (-22.0, -17.0)

TEXT_MISSING = 0.03
AUDIO_MISSING = 0.02
TEXT_WRONG = 0.05  # a hint that states the opposite of the truth
HINTS_PER_NOTE = [0.05, 0.1, 0.3, 0.55]  # chance of 0, 1, 2, 3 hints in a note

# Partial facts about a digit; a note states up to three of them, never the digit.
LOOPED = {0, 6, 8, 9}  # drawn with a closed loop
PRIME = {2, 3, 5, 7}
FACTS = {
    "parity": (
        lambda d: d % 2 == 0,
        ["an even number", "divisible by two", "even"],
        ["an odd number", "not divisible by two", "odd"],
    ),
    "size": (
        lambda d: d < 5,
        ["smaller than five", "a low digit", "below five"],
        ["five or more", "a high digit", "at least five"],
    ),
    "loop": (
        lambda d: d in LOOPED,
        ["drawn with a closed loop", "has a round loop", "loopy"],
        ["no closed loop", "only open strokes", "all straight or open strokes"],
    ),
    "prime": (
        lambda d: d in PRIME,
        ["a prime number", "prime", "a prime"],
        ["not a prime number", "not prime", "a non-prime"],
    ),
}
FILLER = [
    "scanned from a paper form",
    "copied from an old ledger",
    "no remark",
    "entered by hand at the desk",
    "written quickly on a form",
    "the clerk was unsure",
]
OPENERS = ["", "note: ", "clerk says ", "looks like "]


def note_for(digit: int, rng: np.random.Generator) -> str:
    """A short note with zero to three partial (sometimes wrong) hints."""
    n_hints = int(rng.choice(len(HINTS_PER_NOTE), p=HINTS_PER_NOTE))
    if n_hints == 0:
        return str(rng.choice(FILLER))
    keys = rng.choice(sorted(FACTS), size=n_hints, replace=False)
    parts = []
    for key in keys:
        test, yes, no = FACTS[str(key)]
        truth = test(digit)
        if rng.random() < TEXT_WRONG:
            truth = not truth
        parts.append(str(rng.choice(yes if truth else no)))
    return str(rng.choice(OPENERS)) + ", ".join(parts)


def make_image(pixels: np.ndarray, rng: np.random.Generator, bad: bool) -> Image.Image:
    """8x8 digit (0..16) -> 32x32 greyscale with an occluding block and noise."""
    img = Image.fromarray((pixels * (255 / 16)).round().astype(np.uint8), mode="L")
    arr = np.asarray(img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR), np.float32)
    arr = arr.copy()
    spec = IMAGE_BAD if bad else IMAGE_OK
    size = int(rng.integers(spec["block"][0], spec["block"][1] + 1))
    y, x = rng.integers(0, IMAGE_SIZE - size + 1, size=2)
    arr[y : y + size, x : x + size] = rng.uniform(0, 255)
    arr += rng.normal(0, spec["noise"], arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), mode="L")


def speak(word: str, rng: np.random.Generator, bad: bool) -> np.ndarray:
    """The word from espeak-ng (random voice, speed, pitch) at 8 kHz, in noise, int16."""
    voice = str(rng.choice(VOICES))
    speed = int(rng.integers(SPEED[0], SPEED[1] + 1))
    pitch = int(rng.integers(PITCH[0], PITCH[1] + 1))
    length = int(RATE * CLIP_SECONDS)
    while True:
        wav = subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
            capture_output=True,
            check=True,
        ).stdout
        y, rate = sf.read(io.BytesIO(wav), dtype="float32")
        y = soxr.resample(y, rate, RATE).astype(np.float32)
        voiced = np.flatnonzero(np.abs(y) > 0.02 * np.abs(y).max())
        y = y[voiced[0] : voiced[-1] + 1]  # drop espeak's leading and trailing silence
        if len(y) <= length:
            break
        speed += 15  # a slow voice: say it faster until it fits the clip
    y = y / np.abs(y).max() * 0.5
    clip = np.zeros(length, np.float32)
    start = int(rng.integers(0, length - len(y) + 1))  # the word at a random offset
    clip[start : start + len(y)] = y
    snr_db = rng.uniform(*(AUDIO_BAD_SNR if bad else AUDIO_OK_SNR))
    noise = rng.normal(0, 1, length).astype(np.float32)
    noise *= np.sqrt(np.mean(y**2) / 10 ** (snr_db / 10) / np.mean(noise**2))
    mix = clip + noise
    mix = mix / np.abs(mix).max() * 0.9
    return np.round(mix * 32767).astype(np.int16)


def main() -> int:
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is missing: apt-get install espeak-ng", file=sys.stderr)
        return 1
    rng = np.random.default_rng(SEED)
    digits = load_digits()
    for sub in ("images", "audio"):
        shutil.rmtree(OUT / sub, ignore_errors=True)
        (OUT / sub).mkdir(parents=True)
    (OUT / "manifest.csv").unlink(missing_ok=True)

    # Which source digits, in which (shuffled) order: ids carry no hint of the label.
    picks = []
    for digit in range(10):
        pool = np.flatnonzero(digits.target == digit)
        picks += [(digit, int(i)) for i in rng.choice(pool, size=PER_CLASS, replace=False)]
    picks = [picks[i] for i in rng.permutation(len(picks))]

    rows = []
    for n, (digit, index) in enumerate(picks, start=1):
        sid = f"s{n:04d}"
        failed = str(rng.choice(list(FAILURE), p=list(FAILURE.values())))
        image = f"images/{sid}.png"
        make_image(digits.images[index], rng, failed == "image").save(OUT / image)
        audio = f"audio/{sid}.wav"
        samples = speak(NAMES[digit], rng, failed == "audio")
        if rng.random() < AUDIO_MISSING:
            audio = ""  # a missing recording: a missing modality, not a broken file
        else:
            sf.write(OUT / audio, samples, RATE, format="WAV", subtype="PCM_16")
        text = note_for(digit, rng)
        if rng.random() < TEXT_MISSING:
            text = ""
        ink = float(digits.images[index].sum()) / (64 * 16)  # 0..1, share of ink
        rows.append(
            {
                "id": sid,
                "image": image,
                "audio": audio,
                "text": text,
                "pen_pressure": round(1.0 + 4.0 * ink + float(rng.normal(0, 0.25)), 3),
                "scanner": str(rng.choice(["north", "south", "east", "west"])),
                "label": NAMES[digit],
            }
        )
    pd.DataFrame(rows).to_csv(OUT / "manifest.csv", index=False, lineterminator="\n")
    print(f"wrote {len(rows)} rows to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
