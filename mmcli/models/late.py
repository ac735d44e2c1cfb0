"""Late fusion: one calibrated linear model per input column, combined by learned weights.

    logits = bias + sum_c  w_c * present_c * log P_c(class | column c)

For columns that carry independent evidence, summing each column's log-odds is the Bayes
rule; ``w_c`` lets the combination discount a column whose model is over- or
under-confident, and a column absent from a row adds nothing. For regression each column
has a ridge model and the combination is a weighted sum of their predictions.

Fitting (all on the train split, deterministic; ``fit`` below):

1. each column's regularisation strength is picked from a path by its log-loss (or
   squared error) on the val split;
2. out-of-fold predictions of that model on the train rows (K folds, seeded) fit the
   combination weights, so the weights never see a column model's own training rows;
3. each column model is refitted on all train rows.

The fitted models are stored as a torch module (``LateFusionNet``), so ``predict`` and
``evaluate`` run it like any other model, from safetensors weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

#: Inverse regularisation strengths tried for each column's logistic model.
C_PATH = (0.01, 0.1, 1.0, 10.0)
#: Ridge penalties tried for each column's regression model.
ALPHA_PATH = (0.1, 1.0, 10.0, 100.0)
FOLDS = 5


class LateFusionNet(nn.Module):
    """forward(*column_blocks, mask) -> (B, out_dim), as ``MultimodalNet`` is called."""

    def __init__(self, architecture: dict[str, Any]):
        super().__init__()
        self.classification = architecture["task"] == "classification"
        out_dim = architecture["out_dim"]
        self.columns = nn.ModuleList(
            [nn.Linear(c["dim"], out_dim) for c in architecture["columns"]]
        )
        self.weight = nn.Parameter(torch.ones(len(architecture["columns"])))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def column_outputs(self, inputs: tuple[Tensor, ...]) -> list[Tensor]:
        outs = [layer(x) for layer, x in zip(self.columns, inputs, strict=True)]
        return [torch.log_softmax(o, dim=1) for o in outs] if self.classification else outs

    def forward(self, *inputs: Tensor) -> Tensor:
        *blocks, mask = inputs
        mask = mask.float()
        out = self.bias.expand(len(mask), -1)
        for c, part in enumerate(self.column_outputs(tuple(blocks))):
            out = out + self.weight[c] * mask[:, c : c + 1] * part
        return out

    def fusion_weights(self) -> list[float]:
        return [round(float(w), 6) for w in self.weight.detach()]


@dataclass
class Fitted:
    """The fitted state (``LateFusionNet``'s state dict) and what was chosen on the way."""

    state: dict[str, Tensor]
    chosen: dict[str, float] = field(default_factory=dict)  # column -> C or alpha


def fit(
    blocks: list[np.ndarray],
    mask: np.ndarray,
    y: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    names: list[str],
    task: str,
    n_out: int,
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> Fitted:
    """Fit every column's model and the combination (see the module's docstring)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    classification = task == "classification"
    # Stratified folds where every class can be in each; else plain folds (a class with one
    # train row); with a single train row, no folds at all (that row is its own fold).
    smallest = _smallest_class(y[train_idx]) if classification else 0
    if smallest >= 2:
        splitter: Any = StratifiedKFold(min(FOLDS, smallest), shuffle=True, random_state=seed)
    else:
        splitter = KFold(max(min(FOLDS, len(train_idx)), 2), shuffle=True, random_state=seed)
    fold_of = np.zeros(len(train_idx), dtype=int)
    if len(train_idx) >= 2:
        for k, (_, held) in enumerate(splitter.split(np.zeros(len(train_idx)), y[train_idx])):
            fold_of[held] = k
    weights = None if sample_weight is None else sample_weight[train_idx]
    oof, layers, chosen = [], [], {}
    for name, x in zip(names, blocks, strict=True):
        strength, full = pick_strength(x, y, train_idx, val_idx, classification, n_out, weights)
        chosen[name] = strength
        parts = np.zeros((len(train_idx), n_out))
        for k in range(fold_of.max() + 1):
            fit_rows, held = train_idx[fold_of != k], train_idx[fold_of == k]
            if not len(fit_rows):  # one train row: nothing out of fold to learn from
                continue
            w = None if weights is None else weights[fold_of != k]
            model = linear(x[fit_rows], y[fit_rows], strength, classification, n_out, w)
            parts[fold_of == k] = _outputs(model, x[held], classification, n_out)
        oof.append(parts * mask[train_idx, len(oof)][:, None])
        layers.append(full)
    column_weights, bias = _combine(oof, y[train_idx], classification, n_out, weights)
    state: dict[str, Tensor] = {"weight": torch.tensor(column_weights, dtype=torch.float32)}
    state["bias"] = torch.tensor(bias, dtype=torch.float32)
    for c, (coef, intercept) in enumerate(layers):
        state[f"columns.{c}.weight"] = torch.tensor(coef, dtype=torch.float32)
        state[f"columns.{c}.bias"] = torch.tensor(intercept, dtype=torch.float32)
    return Fitted(state, chosen)


def _smallest_class(y: np.ndarray) -> int:
    counts = np.bincount(y)
    return int(counts[counts > 0].min()) if len(y) else 0


def pick_strength(
    x: np.ndarray,
    y: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    classification: bool,
    n_out: int,
    weights: np.ndarray | None,
) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """The path's value with the best val log-loss (squared error), the middle one without
    val rows; and the model fitted on the train rows with it."""
    path = C_PATH if classification else ALPHA_PATH
    if not len(val_idx):
        middle = path[len(path) // 2]
        return middle, linear(x[train_idx], y[train_idx], middle, classification, n_out, weights)
    models = linear_path(x[train_idx], y[train_idx], path, classification, n_out, weights)
    losses = []
    for model in models:
        out = _outputs(model, x[val_idx], classification, n_out)
        if classification:
            losses.append(-float(out[np.arange(len(val_idx)), y[val_idx]].mean()))
        else:
            losses.append(float(((out[:, 0] - y[val_idx]) ** 2).mean()))
    best = int(np.argmin(losses))
    return path[best], models[best]


def linear(
    x: np.ndarray,
    y: np.ndarray,
    strength: float,
    classification: bool,
    n_out: int,
    weights: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(coef (n_out, dim), intercept (n_out,)) of a logistic (or ridge) model."""
    return linear_path(x, y, (strength,), classification, n_out, weights)[0]


def linear_path(
    x: np.ndarray,
    y: np.ndarray,
    strengths: tuple[float, ...],
    classification: bool,
    n_out: int,
    weights: np.ndarray | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``linear`` at each strength. The logistic fits run from the strongest penalty (the
    smallest C, first on ``C_PATH``) to the weakest, each starting from the last one's
    solution, as scikit-learn's own regularisation path does: several times fewer
    iterations than fitting each from zero.

    BLAS runs on one thread here: each iteration multiplies the rows by a matrix with one
    column per class, a product too thin to share: on two cores a threaded OpenBLAS was
    11x slower at 300 x 364, 19x at 2,000 x 400 and 1.9x at 30,000 x 2,000
    (``benchmarks/blas.py``)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        if not classification:
            from sklearn.linear_model import Ridge

            out = []
            for alpha in strengths:
                ridge = Ridge(alpha=alpha).fit(x, y, sample_weight=weights)
                out.append((ridge.coef_.reshape(1, -1), np.atleast_1d(ridge.intercept_)))
            return out
        from sklearn.linear_model import LogisticRegression

        present = np.unique(y)
        if len(present) == 1:  # a fold with one class: it is certain
            coef, intercept = np.zeros((n_out, x.shape[1])), np.full(n_out, -30.0)
            intercept[present[0]] = 0.0
            return [(coef, intercept)] * len(strengths)
        model = LogisticRegression(max_iter=2000, tol=1e-6, warm_start=True)
        out = []
        for strength in strengths:
            model.set_params(C=strength).fit(x, y, sample_weight=weights)
            coef, intercept = np.zeros((n_out, x.shape[1])), np.full(n_out, -30.0)
            if len(present) == 2:  # sklearn keeps one row for two classes: logits (0, z)
                coef[present[1]], intercept[present[1]] = model.coef_[0], model.intercept_[0]
                intercept[present[0]] = 0.0
            else:
                coef[present], intercept[present] = model.coef_, model.intercept_
            out.append((coef, intercept))
        return out


def _outputs(
    model: tuple[np.ndarray, np.ndarray], x: np.ndarray, classification: bool, n_out: int
) -> np.ndarray:
    z = x.astype(np.float64) @ model[0].T + model[1]
    if not classification:
        return z
    z -= z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _combine(
    parts: list[np.ndarray],
    y: np.ndarray,
    classification: bool,
    n_out: int,
    weights: np.ndarray | None,
    l2: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Column weights and bias minimising the (weighted) log-loss, or squared error, of
    ``bias + sum_c w_c parts[c]`` on the out-of-fold rows, with a small L2 on the weights."""
    from scipy.optimize import minimize

    n, m = len(y), len(parts)
    rw = np.ones(n) if weights is None else weights / weights.mean()
    target = np.eye(n_out)[y] if classification else y.astype(np.float64)[:, None]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, bias = theta[:m], theta[m:]
        z = bias + sum(wc * p for wc, p in zip(w, parts, strict=True))
        if classification:
            z = z - z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            value = -(rw * (target * logp).sum(axis=1)).sum() / n
            grad_z = (np.exp(logp) - target) * rw[:, None] / n
        else:
            value = 0.5 * (rw[:, None] * (z - target) ** 2).sum() / n
            grad_z = (z - target) * rw[:, None] / n
        grad_w = np.array([(grad_z * p).sum() for p in parts]) + 2 * l2 * w
        return value + l2 * float(w @ w), np.concatenate([grad_w, grad_z.sum(axis=0)])

    from threadpoolctl import threadpool_limits

    start = np.concatenate([np.ones(m), np.zeros(n_out)])
    with threadpool_limits(1, user_api="blas"):  # as in linear_path
        result = minimize(loss, start, jac=True, method="L-BFGS-B")
    return result.x[:m], result.x[m:]
