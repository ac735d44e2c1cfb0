"""Image encoders that need no trained weights: colour/texture statistics and small pixels."""

from __future__ import annotations

import numpy as np

from mmcli.encoders.base import Encoder

# Images per chunk: at most 256, fewer for large images, so the int64 index arrays of
# one chunk stay near 100 MB whatever the image size.
_CHUNK = 256
_CHUNK_PIXELS = 1 << 22


def _grey(images: np.ndarray) -> np.ndarray:
    # ITU-R 601 luma, in [0, 1]. Spelt out rather than a matmul so that no BLAS kernel
    # (whose rounding can depend on the batch's shape) decides a pixel's value.
    rgb = images.astype(np.float32) / 255.0
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _l2(x: np.ndarray) -> np.ndarray:
    # Unit length along the last axis; the epsilon keeps a flat (edge-free) region at zero.
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-6)


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
        if len(values) == 0:
            return np.zeros((0, self.dim), np.float32)
        h, w = values.shape[1:3]
        step = max(1, min(_CHUNK, _CHUNK_PIXELS // (h * w)))
        out = [self._chunk(np.asarray(values[i : i + step])) for i in range(0, len(values), step)]
        return np.concatenate(out)

    def _chunk(self, images: np.ndarray) -> np.ndarray:
        n, h, w, _ = images.shape
        rows = np.arange(n)[:, None]
        # Colour: a 16-bin histogram per channel, as shares of the pixels. One bincount
        # over (image, channel, bin) indices does the whole chunk without a Python loop.
        flat = images.reshape(n, h * w, 3)
        bins = flat // (256 // self.BINS)
        index = ((rows[:, :, None] * 3 + np.arange(3)) * self.BINS + bins).reshape(-1)
        hist = np.bincount(index, minlength=n * 3 * self.BINS).reshape(n, -1) / (h * w)
        mean = flat.mean(axis=1) / 255.0
        std = flat.std(axis=1) / 255.0
        # Texture: central-difference gradients of the grey image; unsigned orientation
        # (0..pi), because a dark-to-light edge and a light-to-dark one run the same way.
        grey = _grey(images)
        gx = np.zeros_like(grey)
        gy = np.zeros_like(grey)
        gx[:, :, 1:-1] = grey[:, :, 2:] - grey[:, :, :-2]
        gy[:, 1:-1, :] = grey[:, 2:, :] - grey[:, :-2, :]
        magnitude = np.hypot(gx, gy).reshape(n, -1)
        angle = np.mod(np.arctan2(gy, gx), np.pi)
        orient = np.minimum(
            (angle / np.pi * self.ORIENTATIONS).astype(np.int64), self.ORIENTATIONS - 1
        ).reshape(n, -1)
        # Each pixel's cell on the 4x4 grid; works for any H and W, even non-divisible ones.
        cell_y = np.minimum(np.arange(h) * self.CELLS // h, self.CELLS - 1)
        cell_x = np.minimum(np.arange(w) * self.CELLS // w, self.CELLS - 1)
        cell = (cell_y[:, None] * self.CELLS + cell_x[None, :]).reshape(1, -1)
        cells = self.CELLS * self.CELLS
        index = ((rows * cells + cell) * self.ORIENTATIONS + orient).reshape(-1)
        hog = np.bincount(
            index,
            weights=magnitude.reshape(-1).astype(np.float64),
            minlength=n * cells * self.ORIENTATIONS,
        )
        hog = hog.reshape(n, cells, self.ORIENTATIONS)
        # The global histogram uses raw magnitudes, before the per-cell normalisation:
        # it says which way the image's strong edges run overall.
        overall = _l2(hog.sum(axis=1))
        return np.concatenate([hist, mean, std, _l2(hog).reshape(n, -1), overall], axis=1).astype(
            np.float32
        )


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
