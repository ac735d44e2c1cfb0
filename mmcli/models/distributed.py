"""Data-parallel training with ``torch.distributed``, when launched by ``torchrun``.

No cluster code of our own: ``torchrun`` starts one process per device (or per CPU
share) and sets RANK, WORLD_SIZE and the rendezvous address; this module joins the
group (gloo on CPU, nccl on CUDA) and wraps the model in torch's
``DistributedDataParallel``, which starts every process from rank 0's weights and
averages gradients in buckets while the backward pass runs. Every process draws the
same global batches from the same seed and takes every ``world``-th row of each, so a
run on N processes follows the same steps as one process with the same global batch.

Batch norm keeps per-process statistics, and rank 0's running averages are the ones
kept (DDP's default); an e2e model with batch norm therefore ends close to, not equal
to, the one-process model. Heads on fused features have none and match it.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn


def launched() -> bool:
    """True in a process that torchrun started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    return torch.distributed.get_rank() if active() else 0


def world() -> int:
    return torch.distributed.get_world_size() if active() else 1


def active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def start(device: torch.device) -> bool:
    """Join the process group torchrun describes; False when not launched by it."""
    if not launched() or active():
        return active()
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend=backend)
    return True


def stop() -> None:
    if active():
        torch.distributed.destroy_process_group()


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA, then Apple's MPS, then the CPU; a named device must be there."""
    from mmcli.errors import UsageError

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise UsageError(f"--device {name}: no such device here", hint="use --device auto or cpu")
    if name == "cuda":
        # Deterministic cuBLAS needs this set before its first call.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` when this process is one of several, else
    ``model`` itself. The wrapper's forward is the training step's forward; the module
    inside keeps the weights (what is validated and saved)."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sum_value(value: Tensor) -> Tensor:
    if active():
        value = value.clone()
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.SUM)
    return value


def summed(loss_fn: nn.Module) -> Any:
    """The same loss with ``reduction="sum"``."""
    import copy

    clone = copy.copy(loss_fn)
    clone.reduction = "sum"
    return clone


def normaliser(loss_fn: nn.Module, y: Tensor) -> float:
    """What ``reduction="mean"`` divides the summed loss by, for the global batch ``y``."""
    if isinstance(loss_fn, nn.CrossEntropyLoss) and loss_fn.weight is not None:
        return float(loss_fn.weight[y].sum())
    return float(y.numel())
