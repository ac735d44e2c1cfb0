"""Encoder registry: modality + name -> class. Adding an encoder is one module and one line here.

Classes are named as import strings so that listing encoders (and ``mmcli --help``)
never imports numpy-heavy modules.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EncoderSpec:
    modality: str
    name: str
    target: str  # "module:Class"
    summary: str


REGISTRY: tuple[EncoderSpec, ...] = (
    EncoderSpec(
        "image",
        "stats",
        "mmcli.encoders.image:ImageStats",
        "per-channel colour histograms, mean/std, gradient-orientation histograms (HOG-like)",
    ),
    EncoderSpec(
        "image",
        "pixels",
        "mmcli.encoders.image:ImagePixels",
        "greyscale image downsampled to 16x16, scaled to [0, 1]",
    ),
    EncoderSpec(
        "audio",
        "mfcc",
        "mmcli.encoders.audio:AudioMFCC",
        "MFCC + delta mean/std and spectral statistics (librosa)",
    ),
    EncoderSpec(
        "audio", "logmel", "mmcli.encoders.audio:AudioLogMel", "log-mel band mean/std (librosa)"
    ),
    EncoderSpec(
        "text",
        "tfidf",
        "mmcli.encoders.text:TextTfidf",
        "TF-IDF over word 1-2 grams, vocabulary fitted on the train split",
    ),
    EncoderSpec(
        "text",
        "hashing",
        "mmcli.encoders.text:TextHashing",
        "hashed word 1-2 gram counts, nothing fitted",
    ),
    EncoderSpec(
        "number",
        "standard",
        "mmcli.encoders.tabular:NumberStandard",
        "standardised with train-split mean and std",
    ),
    EncoderSpec(
        "category",
        "onehot",
        "mmcli.encoders.tabular:CategoryOneHot",
        "one-hot over train-split categories plus an unknown bucket",
    ),
)

DEFAULTS = {
    "image": "stats",
    "audio": "mfcc",
    "text": "tfidf",
    "number": "standard",
    "category": "onehot",
}


def names(modality: str) -> list[str]:
    return [s.name for s in REGISTRY if s.modality == modality]


def spec(modality: str, name: str) -> EncoderSpec:
    for s in REGISTRY:
        if s.modality == modality and s.name == name:
            return s
    from mmcli.errors import UsageError

    raise UsageError(
        f"unknown {modality} encoder {name!r}",
        hint=f"choose one of: {', '.join(names(modality))} (see `mmcli encoders`)",
    )


def encoder_class(modality: str, name: str) -> Any:
    module, cls = spec(modality, name).target.split(":")
    return getattr(importlib.import_module(module), cls)


def create(modality: str, name: str, **options: Any) -> Any:
    return encoder_class(modality, name)(**options)
