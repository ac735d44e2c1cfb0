"""Text cleaning: Unicode NFKC, whitespace collapsed."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalise_text(value: object) -> str | None:
    """Normalised text, or None when nothing is left (an empty text is a missing modality)."""
    if value is None:
        return None
    text = _SPACE.sub(" ", unicodedata.normalize("NFKC", str(value))).strip()
    return text or None
