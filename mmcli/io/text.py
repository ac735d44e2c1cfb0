"""Text cleaning: Unicode NFKC, whitespace collapsed; a budget on length."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
#: Default of --text-max-chars: about 40 pages. A few MB of text in one cell makes every
#: text encoder's memory and time grow with it (and NFKC may expand a character 18-fold).
MAX_CHARS = 200_000


def normalise_text(value: object, max_chars: int = MAX_CHARS) -> str | None:
    """Normalised text, or None when nothing is left (an empty text is a missing modality).

    A cell over ``max_chars`` characters, before normalising (checked first, so a huge
    cell costs nothing) or after it, is a ValueError naming the budget.
    """
    if value is None:
        return None
    raw = str(value)
    _check_length(len(raw), max_chars, "")
    text = _SPACE.sub(" ", unicodedata.normalize("NFKC", raw)).strip()
    _check_length(len(text), max_chars, " once Unicode-normalised")
    return text or None


def _check_length(length: int, max_chars: int, when: str) -> None:
    if length > max_chars:
        raise ValueError(
            f"text of {length:,} characters{when}, over the {max_chars:,} character budget "
            "(raise --text-max-chars)"
        )
