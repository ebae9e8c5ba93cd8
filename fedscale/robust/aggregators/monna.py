"""MoNNA: mean of the nearest neighbours of a trusted update.

Farhadkhani, Guerraoui, Gupta, Hoang, Pinot, Stephan, "Robust Collaborative Learning with
Linear Gradient Overhead", ICML 2023, Algorithm 1 (MoNNA), as in ByzFL ``MoNNA``:

    MoNNA_{f,idx}(x) = 1/(n-f) * sum_{i in N_idx} x_i,

N_idx = the n - f updates nearest (Euclidean) to x_idx, x_idx itself included.  ``idx``
(default 0) must designate an update known to be honest (e.g. the server's / own update).
Ties are broken by lowest index.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation
from fedscale.robust.report import note

from ._common import require


def aggregate(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None, idx: int = 0,
              report: dict | None = None, **params) -> torch.Tensor:
    n, _ = check_aggregation("monna", updates, f, weights=weights, params=params)
    require(isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < n, f"monna: idx must be an integer in [0, n={n}), got {idx!r}")
    ref = updates[idx]
    # squared distances to one point via the same ||a||^2 + ||b||^2 - 2 a.b expansion
    sq = (updates * updates).sum(dim=1)
    dist = (sq + (ref * ref).sum() - 2.0 * (updates @ ref)).clamp_min(0.0)
    dist[idx] = -1.0  # the trusted point is always its own nearest neighbour
    chosen = torch.argsort(dist, stable=True)[: n - f]
    note(report, "kept", chosen)
    return updates[chosen].mean(dim=0)
