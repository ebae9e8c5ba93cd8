"""Krum and Multi-Krum.

Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with Adversaries: Byzantine
Tolerant Gradient Descent", NeurIPS 2017, Sec. 4 (Krum score s(i) = sum_{i->j} ||x_i - x_j||^2,
output x_{argmin s}) and Sec. 5 (Multi-Krum: average of the m lowest-scoring updates).

Neighbourhood size follows ByzFL (``Krum``/``MultiKrum``): the score of x_i sums the squared
distances to its n - f - 1 nearest *other* updates (the paper uses n - f - 2; ByzFL counts
x_i itself among its n - f nearest neighbours).  Ties go to the lowest index.
Validation follows the paper's requirement n > 2f + 2.

``aggregate`` is Krum (``m=1``); ``multi_krum`` / ``aggregate(..., m=k)`` averages the k best;
Multi-Krum's default m is n - f (ByzFL).
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation, reject_unknown, reject_weights
from fedscale.robust.report import note

from ._common import krum_scores, require


def _check(updates: torch.Tensor, f: int, name: str) -> int:
    n, _ = check_aggregation(name, updates, f, majority=False)
    require(n > 2 * f + 2, f"{name}: needs n > 2f + 2, got n={n}, f={f}")
    return n


def select(updates: torch.Tensor, f: int, m: int) -> torch.Tensor:
    """Indices of the m updates with the lowest Krum scores (stable, lowest index on ties)."""
    scores = krum_scores(updates, f)
    return torch.argsort(scores, stable=True)[:m]


def aggregate(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None, m: int = 1,
              report: dict | None = None, **params) -> torch.Tensor:
    n = _check(updates, f, "krum")
    reject_weights(weights, "krum")
    reject_unknown(params, "krum")
    require(isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= n, f"krum: m must be an integer in [1, n={n}], got {m!r}")
    idx = select(updates, f, m)
    note(report, "kept", idx)
    if m == 1:
        return updates[idx[0]].clone()
    return updates[idx].mean(dim=0)


def multi_krum(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None, m: int | None = None,
               report: dict | None = None, **params) -> torch.Tensor:
    n = _check(updates, f, "multi_krum")
    return aggregate(updates, f=f, weights=weights, m=(n - f) if m is None else m, report=report, **params)
