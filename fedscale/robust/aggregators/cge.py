"""Comparative gradient elimination (CGE).

Gupta, Liu, Vaidya, "Byzantine Fault-Tolerant Distributed Machine Learning with Norm-Based
Comparative Gradient Elimination", DSN Workshops 2021, Eq. (CGE): sort updates by Euclidean
norm, keep the n - f with the smallest norms.  The paper's server *sums* the kept gradients;
here they are averaged, 1/(n-f) * sum_{j<=n-f} x_(j), so that the output is on the same scale
as the mean (pass ``reduce="sum"`` for the paper's sum).  Ties broken by lowest index.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation
from fedscale.robust.report import note

from ._common import require


def aggregate(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None, reduce: str = "mean",
              report: dict | None = None, **params) -> torch.Tensor:
    n, _ = check_aggregation("cge", updates, f, weights=weights, params=params, majority=False)
    require(f < n, f"cge: needs n > f, got n={n}, f={f}")
    require(reduce in ("mean", "sum"), f"cge: reduce must be 'mean' or 'sum', got {reduce!r}")
    norms = torch.linalg.vector_norm(updates, dim=1)
    chosen = torch.argsort(norms, stable=True)[: n - f]
    note(report, "kept", chosen)
    kept = updates[chosen]
    return kept.mean(dim=0) if reduce == "mean" else kept.sum(dim=0)
