"""Text to token ids for the RNN: a word vocabulary fitted on the train split."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def build_vocab(texts: list[str], max_size: int = 20000) -> list[str]:
    """Most frequent tokens first (ties alphabetical, so it is deterministic); 0 is padding."""
    counts = Counter(token for text in texts for token in tokenize(text))
    ranked = sorted(counts, key=lambda t: (-counts[t], t))[: max_size - 2]
    return [PAD, UNK, *ranked]


def encode(texts: list[str | None], vocab: list[str], max_len: int) -> np.ndarray:
    """(n, max_len) int64 ids, zero-padded; unknown words map to <unk>, long texts are cut."""
    index = {token: i for i, token in enumerate(vocab)}
    ids = np.zeros((len(texts), max_len), dtype=np.int64)
    for row, text in enumerate(texts):
        tokens = tokenize(text)[:max_len] if text else []
        ids[row, : len(tokens)] = [index.get(t, 1) for t in tokens]
    return ids
