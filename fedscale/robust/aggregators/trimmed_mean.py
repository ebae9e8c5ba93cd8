"""Coordinate-wise trimmed mean.

Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal
Statistical Rates", ICML 2018, Definition 2 (coordinate-wise trimmed mean), with the
trimming of ByzFL ``TrMean``: per coordinate drop the f largest and f smallest values and
average the remaining n - 2f:
[TrMean_f(x)]_k = 1/(n-2f) * sum_{j=f+1}^{n-f} [x_(j)]_k   (order statistics of coordinate k).

Optional ``beta`` (trim count per side) overrides f.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation

from ._common import require


def aggregate(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None, beta: int | None = None, **params) -> torch.Tensor:
    n, _ = check_aggregation("trimmed_mean", updates, f, weights=weights, params=params, majority=False)
    b = f if beta is None else beta
    require(isinstance(b, int) and not isinstance(b, bool) and b >= 0, f"trimmed_mean: beta must be a non-negative integer, got {b!r}")
    require(2 * b < n, f"trimmed_mean: needs n > 2*beta (beta defaults to f), got n={n}, beta={b}")
    if b == 0:
        return updates.mean(dim=0)
    s = torch.sort(updates, dim=0).values
    return s[b : n - b].mean(dim=0)
