"""What every feature encoder is: fit on the train split, transform any rows, save its state.

An encoder turns the preprocessed values of one input column into a fixed-size
float32 vector per row. Values arrive as the preprocess stage stores them:

- image:    uint8 array (n, H, W, 3)
- audio:    float32 array (n, samples), mono, at ``sample_rate`` Hz
- text:     list of n normalised strings
- number:   float64 array (n,)
- category: list of n strings

Only rows whose value is present are passed; the stage fills missing rows.
Fitted state is split into a JSON-able dict and named numpy arrays so it can be
stored as JSON + safetensors: no pickle, ever.

Features must be finite: a value an encoder cannot turn into finite float32 numbers (a
huge number standardised) comes out as inf or NaN, which the stage finds and reports
with ``nonfinite_reason``; a fit that would overflow raises ``Overflow``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np


class Overflow(ValueError):
    """Train-split values an encoder cannot fit on without overflowing; ``index`` is the
    position, among the values passed to ``fit``, of the value to blame."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.message, self.index = message, index

    def __reduce__(self) -> Any:  # pickled across worker processes with both arguments
        return (type(self), (self.message, self.index))


class Encoder:
    """Base class. Subclasses set ``name``/``modality`` and implement ``transform``."""

    name: ClassVar[str]
    modality: ClassVar[str]
    description: ClassVar[str] = ""
    #: True when ``fit`` learns something from the train split.
    fitted: ClassVar[bool] = False
    #: True when extract-features may spread rows over worker processes. Encoders that
    #: run a multi-threaded runtime (ONNX Runtime) use the cores themselves: False.
    processes: ClassVar[bool] = True

    def __init__(self, **options: Any):
        self.options = options

    @property
    def dim(self) -> int:
        """Output width; valid after ``fit`` (or at once for encoders that learn nothing)."""
        raise NotImplementedError

    def fit(self, values: Any) -> None:
        """Learn from train-split values. Encoders that learn nothing keep this no-op."""

    def transform(self, values: Any) -> np.ndarray:
        """Return float32 array of shape (n, dim)."""
        raise NotImplementedError

    def nonfinite_reason(self, value: Any = None) -> str:
        """Why ``value`` (one row's input) gave features that are not finite numbers."""
        return f"the {self.name} encoder gave features that are not finite numbers"

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able dict, arrays) that ``from_state`` turns back into this encoder."""
        return {"options": self.options}, {}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Encoder:
        return cls(**meta.get("options", {}))
