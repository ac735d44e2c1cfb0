"""Encoders for number and category columns."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from mmcli.encoders.base import Encoder, Overflow

#: The largest float32: a standardised value past it is stored as inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)


class NumberStandard(Encoder):
    """(x - mean) / std with train-split statistics; a constant column gets std 1."""

    name = "standard"
    modality = "number"
    description = "standardised with train mean/std"
    fitted = True

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.mean, self.std = 0.0, 1.0

    @property
    def dim(self) -> int:
        return 1

    def fit(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float64)
        # Values past about 1e154 overflow the squares of the standard deviation, past
        # about 1e308 / n the sum of the mean: both would turn every feature to 0 or NaN.
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = float(np.mean(values)), float(np.std(values))
        if not (np.isfinite(mean) and np.isfinite(std)):
            worst = int(np.argmax(np.abs(values)))
            what = "mean" if not np.isfinite(mean) else "standard deviation"
            raise Overflow(
                f"value {values[worst]:g} is too large to standardise: "
                f"the train split's {what} overflows",
                worst,
            )
        self.mean, self.std = mean, std or 1.0

    def transform(self, values: np.ndarray) -> np.ndarray:
        # A value that lands past float32's range becomes inf, found and reported by the
        # stage (``nonfinite_reason``): no warning here.
        with np.errstate(over="ignore", invalid="ignore"):
            z = (np.asarray(values, np.float64) - self.mean) / self.std
            return z.astype(np.float32)[:, None]

    def nonfinite_reason(self, value: Any = None) -> str:
        shown = "" if value is None else f"{float(value):g} "
        return (
            f"value {shown}is outside what the model's features can hold: standardised "
            f"with the train split's mean {self.mean:g} and std {self.std:g} it passes "
            f"float32's largest value, {FLOAT32_MAX:.3g}"
        )

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"options": self.options, "mean": self.mean, "std": self.std}, {}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> NumberStandard:
        encoder = cls(**meta["options"])
        encoder.mean, encoder.std = meta["mean"], meta["std"]
        return encoder


class CategoryOneHot(Encoder):
    """One-hot over the train split's most frequent categories, plus an 'unknown' bucket."""

    name = "onehot"
    modality = "category"
    description = "one-hot over train categories + unknown bucket"
    fitted = True

    def __init__(self, max_categories: int = 50, **options: Any):
        super().__init__(max_categories=max_categories, **options)
        self.max_categories = max_categories
        self.categories: list[str] = []

    @property
    def dim(self) -> int:
        return len(self.categories) + 1

    def fit(self, values: list[str]) -> None:
        counts = Counter(values)
        # Most frequent first, ties alphabetical, so the choice is deterministic.
        ranked = sorted(counts, key=lambda c: (-counts[c], c))[: self.max_categories]
        self.categories = sorted(ranked)

    def transform(self, values: list[str]) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.categories)}
        out = np.zeros((len(values), self.dim), np.float32)
        out[np.arange(len(values)), [index.get(v, len(self.categories)) for v in values]] = 1.0
        return out

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"options": self.options, "categories": self.categories}, {}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> CategoryOneHot:
        encoder = cls(**meta["options"])
        encoder.categories = list(meta["categories"])
        return encoder
