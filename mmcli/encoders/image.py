"""Image encoders that need no trained weights: colour/texture statistics and small pixels."""

from __future__ import annotations

import numpy as np

from mmcli.encoders.base import Encoder

_CHUNK = 256


def _grey(images: np.ndarray) -> np.ndarray:
    # ITU-R 601 luma, in [0, 1]
    return (images[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


class ImageStats(Encoder):
    """Colour histograms, channel mean/std and HOG-like gradient-orientation histograms.

    Colour says what is in the picture; the orientation histograms on a 4x4 grid of
    cells say where edges run (strokes of a digit, stripes), which colour cannot.
    """

    name = "stats"
    modality = "image"
    description = "colour histograms, mean/std, 4x4-cell gradient-orientation histograms"
    BINS = 16
    ORIENTATIONS = 9
    CELLS = 4

    @property
    def dim(self) -> int:
        return 3 * self.BINS + 6 + (self.CELLS * self.CELLS + 1) * self.ORIENTATIONS

    def transform(self, values: np.ndarray) -> np.ndarray:
        out = [self._chunk(np.asarray(values[i:i + _CHUNK])) for i in range(0, len(values), _CHUNK)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def _chunk(self, images: np.ndarray) -> np.ndarray:
        n, h, w, _ = images.shape
        flat = images.reshape(n, -1, 3)
        # Colour: a 16-bin histogram per channel, as shares of the pixels.
        bins = (flat // (256 // self.BINS)).astype(np.int64)
        hist = np.zeros((n, 3, self.BINS), np.float32)
        for c in range(3):
            np.add.at(hist[:, c], (np.arange(n)[:, None], bins[:, :, c]), 1.0)
        hist /= flat.shape[1]
        mean = flat.mean(axis=1) / 255.0
        std = flat.std(axis=1) / 255.0
        # Texture: unsigned gradient orientations weighted by magnitude.
        grey = _grey(images)
        gx = np.zeros_like(grey)
        gy = np.zeros_like(grey)
        gx[:, :, 1:-1] = grey[:, :, 2:] - grey[:, :, :-2]
        gy[:, 1:-1, :] = grey[:, 2:, :] - grey[:, :-2, :]
        magnitude = np.hypot(gx, gy)
        angle = np.mod(np.arctan2(gy, gx), np.pi)
        orient = np.minimum((angle / np.pi * self.ORIENTATIONS).astype(np.int64),
                            self.ORIENTATIONS - 1)
        cell_y = np.minimum(np.arange(h) * self.CELLS // h, self.CELLS - 1)
        cell_x = np.minimum(np.arange(w) * self.CELLS // w, self.CELLS - 1)
        cell = (cell_y[:, None] * self.CELLS + cell_x[None, :])[None].repeat(n, 0)
        index = (cell * self.ORIENTATIONS + orient).reshape(n, -1)
        hog = np.zeros((n, self.CELLS * self.CELLS * self.ORIENTATIONS), np.float32)
        np.add.at(hog, (np.arange(n)[:, None], index), magnitude.reshape(n, -1))
        hog = hog.reshape(n, self.CELLS * self.CELLS, self.ORIENTATIONS)
        hog /= np.linalg.norm(hog, axis=2, keepdims=True) + 1e-6
        overall = hog.sum(axis=1)
        overall /= np.linalg.norm(overall, axis=1, keepdims=True) + 1e-6
        return np.concatenate([hist.reshape(n, -1), mean, std, hog.reshape(n, -1), overall],
                              axis=1).astype(np.float32)


class ImagePixels(Encoder):
    """The image as 16x16 greyscale pixels in [0, 1]: a baseline that keeps the layout."""

    name = "pixels"
    modality = "image"
    description = "greyscale, 16x16 by block averaging"
    SIDE = 16

    @property
    def dim(self) -> int:
        return self.SIDE * self.SIDE

    def transform(self, values: np.ndarray) -> np.ndarray:
        from PIL import Image

        out = np.zeros((len(values), self.dim), np.float32)
        for i, image in enumerate(values):
            grey = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("L")
            small = grey.resize((self.SIDE, self.SIDE), Image.Resampling.BOX)
            out[i] = np.asarray(small, np.float32).reshape(-1) / 255.0
        return out
