"""Video frames through any image encoder, pooled over time.

A video column's value is (n, K, S, S, 3) uint8. The image encoder sees the n*K frames as
ordinary images; its (n, K, d) output is pooled over K into the mean, or the mean and the
standard deviation side by side (how much the picture changes: motion, flicker).
The soundtrack is a separate audio column and goes through an audio encoder.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmcli import encoders
from mmcli.encoders.base import Encoder

POOLS = ("mean", "meanstd")


class VideoFrames(Encoder):
    """An image encoder applied to every sampled frame, then mean (and std) over time."""

    modality = "video"
    description = "an image encoder on each sampled frame, pooled over time"

    def __init__(self, image: str = "stats", pool: str = "meanstd", **options: Any):
        if pool not in POOLS:
            raise ValueError(f"unknown video pool {pool!r}")
        super().__init__(image=image, pool=pool, **options)
        self.name = image
        self.frames = encoders.create("image", image, **options)
        self.fitted = self.frames.fitted  # type: ignore[misc]
        self.processes = self.frames.processes  # type: ignore[misc]

    @property
    def dim(self) -> int:
        return self.frames.dim * (2 if self.options["pool"] == "meanstd" else 1)

    @staticmethod
    def _flat(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        return values.reshape(-1, *values.shape[2:])  # (n, K, S, S, 3) -> (n*K, S, S, 3)

    def fit(self, values: np.ndarray) -> None:
        self.frames.fit(self._flat(values))

    def transform(self, values: np.ndarray) -> np.ndarray:
        n, k = len(values), (values.shape[1] if len(values) else 1)
        per_frame = self.frames.transform(self._flat(values)).reshape(n, k, -1)
        pooled = [per_frame.mean(axis=1)]
        if self.options["pool"] == "meanstd":
            pooled.append(per_frame.std(axis=1))
        return np.concatenate(pooled, axis=1).astype(np.float32)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = self.frames.state()
        return {"options": self.options, "frames": meta}, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> VideoFrames:
        encoder = cls(**meta["options"])
        image_cls = encoders.encoder_class("image", meta["options"]["image"])
        encoder.frames = image_cls.from_state(meta["frames"], arrays)
        return encoder
