"""The training loop every model shares: seeded mini-batches, early stopping on the val split.

Models take a tuple of tensors (one per input, indexed by row) so heads on a fused
matrix and end-to-end models on several raw inputs go through the same loop.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn


class Diverged(ArithmeticError):
    """The loss stopped being a finite number: inputs or targets too large for float32, or
    a learning rate too high. ``row`` is a train row whose model output was not finite
    (None when every output was and the loss itself overflowed)."""

    def __init__(self, epoch: int, row: int | None):
        super().__init__(f"the loss is not a finite number at epoch {epoch}")
        self.epoch, self.row = epoch, row


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def loss_function(task: str, loss: str, class_weights: Tensor | None) -> nn.Module:
    if task == "classification":
        return nn.CrossEntropyLoss(weight=class_weights)
    return nn.HuberLoss() if loss == "huber" else nn.MSELoss()


Augment = Callable[[list[Tensor], int, int], list[Tensor]]


class RowDataset(torch.utils.data.Dataset):
    """Rows of in-memory tensors, augmented per row: what data-loader workers read."""

    def __init__(self, inputs: Sequence[Tensor], augment: Augment, rows: set[int] | None):
        self.inputs, self.augment, self.rows, self.epoch = inputs, augment, rows, 0

    def __len__(self) -> int:
        return len(self.inputs[0])

    def __getitem__(self, index: int) -> list[Tensor]:
        row = [t[index] for t in self.inputs]
        if self.rows is None or index in self.rows:
            row = self.augment(row, self.epoch, index)
        return row


def _batches(
    inputs: Sequence[Tensor],
    chunks: list[Tensor],
    epoch: int,
    dataset: RowDataset | None,
    workers: int,
) -> Any:
    if dataset is None:  # no augmentation: slice the tensors directly, the fast path
        return (tuple(t[c] for t in inputs) for c in chunks)
    dataset.epoch = epoch
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=[c.tolist() for c in chunks], num_workers=workers
    )
    return (tuple(batch) for batch in loader)


def fit(
    model: nn.Module,
    inputs: Sequence[Tensor],
    y: Tensor,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    loss_fn: nn.Module,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    patience: int,
    generator: torch.Generator,
    score: Callable[[Tensor, Tensor], float],
    progress: Callable[[str, int, int | None], None],
    sample_weights: Tensor | None = None,
    augment: Augment | None = None,
    augment_rows: set[int] | None = None,
    workers: int = 0,
    device: torch.device | None = None,
    score_name: str = "score",
    on_epoch: Callable[[FitResult], None] | None = None,
) -> FitResult:
    """Train ``model`` in place, leaving it with the weights of the best val epoch.

    The best epoch is the one with the lowest val loss (smoother than a score on a
    small val split); with no val rows, the last epoch is kept. ``sample_weights`` (one
    per train row) draws batches with replacement instead of shuffling; ``augment``
    changes rows (all, or only ``augment_rows``) with per-row seeds, so the result does
    not depend on ``workers``. ``on_epoch`` sees the result after every epoch (``tune``
    prunes a trial from there by raising).

    Under ``torchrun`` each process takes every ``world``-th row of each global batch
    and the model is wrapped in ``DistributedDataParallel``. Each process's loss is its
    rows' summed loss over the global batch's count, times ``world``: DDP averages the
    gradients, so the step is the one a single process takes on the whole batch.
    """
    step = _start(model, loss_fn, y, device or torch.device("cpu"), lr, weight_decay)
    train_t = torch.as_tensor(train_idx, dtype=torch.long)
    result = FitResult()
    dataset = RowDataset(inputs, augment, augment_rows) if augment else None
    best_loss, best_state, waited = float("inf"), copy.deepcopy(model.state_dict()), 0
    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        step.net.train()
        chunks = _epoch_batches(train_t, batch_size, sample_weights, generator)
        mine = [c[step.rank :: step.world] for c in chunks]  # this process's rows of each batch
        batches = _batches(inputs, [c for c in mine if len(c)], epoch, dataset, workers)
        # Closed however the epoch ends (a signal too): DataLoader workers stop here.
        with contextlib.closing(batches):
            train_loss = _train_epoch(step, inputs, chunks, mine, batches, epoch)
        entry: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss}
        if len(val_idx):
            val_loss, val_score = _validate(step, inputs, val_idx, score, epoch)
            entry.update(val_loss=round(val_loss, 6), val_score=round(val_score, 6))
        else:
            val_loss = entry["train_loss"]
        result.history.append(entry)
        # An epoch counts as better only when it improves the val loss by 0.1%: a loss
        # creeping towards zero on separable data must not hold training open forever.
        if val_loss < best_loss * (1 - 1e-3) - 1e-8:
            best_loss, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
            result.best_epoch = epoch
        else:
            waited += 1
        last = min(epochs, result.best_epoch + patience) if len(val_idx) else epochs
        seconds = (time.monotonic() - started) / epoch * (last - epoch)
        progress(f"training epochs | {epoch_line(entry, score_name, last, seconds)}", epoch, epochs)
        if on_epoch is not None:
            on_epoch(result)
        if waited >= patience and len(val_idx):
            result.stopped_early = True
            break
    if not len(val_idx):
        result.best_epoch, best_state = len(result.history), model.state_dict()
    model.load_state_dict(best_state)
    model.cpu()
    return result


def epoch_line(entry: dict[str, Any], score_name: str, last: int, seconds: float) -> str:
    """What a person follows while training: this epoch's losses and val score, and the
    most time left (early stopping ends at ``last`` unless the val loss improves)."""
    parts = [f"train loss {entry['train_loss']:.4g}"]
    if "val_loss" in entry:
        parts += [f"val loss {entry['val_loss']:.4g}", f"{score_name} {entry['val_score']:.4g}"]
    left = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
    if entry["epoch"] >= last:
        return ", ".join(parts)
    return ", ".join(parts) + f"; at most {left} left (by epoch {last})"


@dataclass
class _Step:
    """What every optimisation step of one ``fit`` call uses."""

    model: nn.Module
    net: nn.Module  # what the training step calls: ``model``, or DDP around it
    loss_fn: nn.Module
    loss_sum: nn.Module  # ``loss_fn`` summed over this process's rows (for ``world`` > 1)
    optimiser: torch.optim.Optimizer
    y: Tensor  # every row's target, on ``device``
    device: torch.device
    rank: int
    world: int


def _start(
    model: nn.Module,
    loss_fn: nn.Module,
    y: Tensor,
    device: torch.device,
    lr: float,
    weight_decay: float,
) -> _Step:
    """Move the model, loss and targets to ``device``, wrap the model for DDP (which
    starts every process from rank 0's weights), and make the optimiser."""
    from mmcli.models import distributed

    model.to(device)
    loss_fn.to(device)
    y = y.to(device)
    return _Step(
        model=model,
        net=distributed.wrap(model, device),
        loss_fn=loss_fn,
        loss_sum=distributed.summed(loss_fn),
        optimiser=torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay),
        y=y,
        device=device,
        rank=distributed.rank(),
        world=distributed.world(),
    )


def _epoch_batches(
    train_t: Tensor, batch_size: int, sample_weights: Tensor | None, generator: torch.Generator
) -> list[Tensor]:
    """This epoch's global batches of train rows: shuffled, or drawn by ``sample_weights``."""
    if sample_weights is not None:
        draw = torch.multinomial(
            sample_weights, len(train_t), replacement=True, generator=generator
        )
        order = train_t[draw]
    else:
        order = train_t[torch.randperm(len(train_t), generator=generator)]
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def _train_epoch(
    step: _Step,
    inputs: Sequence[Tensor],
    chunks: list[Tensor],
    mine: list[Tensor],
    batches: Any,
    epoch: int,
) -> float:
    """One optimisation step per global batch of ``chunks``, on this process's rows of it
    (``mine``, read from ``batches``); returns the epoch's mean train loss, rounded.

    A last batch smaller than the process count leaves some processes no rows: they
    pass zero rows through the model, so DDP still sees every process take the step.
    A loss that is not finite raises ``Diverged`` in every process (each sees the summed
    loss): the weights would be NaN from then on, and the best epoch a lie."""
    from mmcli.models import distributed

    net, loss_fn, loss_sum, optimiser = step.net, step.loss_fn, step.loss_sum, step.optimiser
    y, device, world = step.y, step.device, step.world
    total, seen = 0.0, 0
    for batch, rows in zip(chunks, mine, strict=True):
        optimiser.zero_grad()
        xs = next(batches) if len(rows) else tuple(t[rows] for t in inputs)
        out = net(*(t.to(device) for t in xs))
        if world == 1:
            loss = loss_fn(out, y[rows])
        else:
            loss = loss_sum(out, y[rows]) * (world / distributed.normaliser(loss_fn, y[batch]))
        value = float(distributed.sum_value(loss.detach())) / world
        if not np.isfinite(value):
            raise Diverged(epoch, _first_nonfinite(out, rows))
        loss.backward()
        optimiser.step()
        total += value * len(batch)
        seen += len(batch)
    return round(total / max(seen, 1), 6)


def _validate(
    step: _Step,
    inputs: Sequence[Tensor],
    val_idx: np.ndarray,
    score: Callable[[Tensor, Tensor], float],
    epoch: int,
) -> tuple[float, float]:
    """(val loss, val score) of the model as it is now; ``Diverged`` if the loss is not
    finite (a val row too large for the model, found before it is scored)."""
    out = predict(step.model, inputs, val_idx, batch_size=1024)
    y_val = step.y[val_idx]
    loss = float(step.loss_fn(out.to(step.device), y_val))
    if not np.isfinite(loss):
        bad = _first_nonfinite(out, torch.as_tensor(val_idx))
        raise Diverged(epoch, bad)
    return loss, score(out, y_val.cpu())


def _first_nonfinite(out: Tensor | None, rows: Tensor) -> int | None:
    """The row (of ``rows``) of the first output that is not finite, or None."""
    if out is None:
        return None
    bad = torch.nonzero(~torch.isfinite(out.detach()).reshape(len(out), -1).all(dim=1))
    return int(rows[int(bad[0])]) if len(bad) else None


@torch.no_grad()
def predict(
    model: nn.Module,
    inputs: Sequence[Tensor],
    idx: np.ndarray | None = None,
    batch_size: int = 1024,
) -> Tensor:
    """Model outputs for rows ``idx`` (all rows when None), in eval mode, batched."""
    model.eval()
    device = next(model.parameters()).device
    rows = torch.arange(len(inputs[0])) if idx is None else torch.as_tensor(idx, dtype=torch.long)
    outs = [
        model(*(t[rows[s : s + batch_size]].to(device) for t in inputs)).cpu()
        for s in range(0, len(rows), batch_size)
    ]
    return torch.cat(outs) if outs else torch.empty(0)
