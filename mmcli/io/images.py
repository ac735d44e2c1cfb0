"""Image decoding: fully decoded, EXIF-rotated, RGB, resized, uint8.

A file that Pillow cannot decode completely is refused with a reason, never
replaced with a blank image.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"}
# Refuse before decoding anything larger (Pillow's own bomb limit is ~89 Mpx and only
# warns); the default of --image-max-megapixels.
MAX_PIXELS = 40_000_000


class ImageRejected(Exception):
    """The per-row reason an image cannot be used."""


def load_image(
    source: Path | bytes, size: int, max_megapixels: float = MAX_PIXELS / 1e6
) -> np.ndarray:
    """Decode a file (its path, or its bytes already read) into a (size, size, 3) uint8
    array, or raise ImageRejected; one over ``max_megapixels`` is refused from its header."""
    if (len(source) if isinstance(source, bytes) else source.stat().st_size) == 0:
        raise ImageRejected("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
                if img.format not in ALLOWED_FORMATS:
                    raise ImageRejected(f"image format {img.format} is not allowed")
                frames = getattr(img, "n_frames", 1)
                if frames > 1:
                    raise ImageRejected(
                        f"animated image ({frames} frames); mmcli reads still images"
                    )
                w, h = img.size
                if w * h > max_megapixels * 1e6:
                    raise ImageRejected(
                        f"image is {w}x{h} pixels, over the {max_megapixels:g} megapixel "
                        "limit (raise --image-max-megapixels)"
                    )
                img.load()  # full decode now: a truncated file fails here, not later
                if img.format == "TIFF" or "exif" in img.info:  # where an orientation can be
                    img = ImageOps.exif_transpose(img)
                rgb = _to_rgb(img)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb refused ({exc})") from None
    except Image.DecompressionBombWarning as exc:
        raise ImageRejected(f"decompression bomb refused ({exc})") from None
    except UnidentifiedImageError:
        # Pillow's own message names the file object, an address when decoding from memory.
        raise ImageRejected("cannot decode image: not a known image format") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"cannot decode image: {exc}") from None
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(rgb, dtype=np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of letting convert() clip.
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        img = Image.fromarray((arr / top * 255.0).round().astype(np.uint8), mode="L")
    if img.mode in ("P", "PA", "LA", "RGBA") or "transparency" in img.info:
        # Composite on white so transparent pixels do not become arbitrary colours.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")
