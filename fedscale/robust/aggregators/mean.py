"""Arithmetic (optionally weighted) mean -- the non-robust FedAvg baseline.

McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized
Data", AISTATS 2017, Eq. (FedAvg server step): x = sum_i w_i x_i / sum_i w_i
(uniform w_i = 1 gives (1/n) sum_i x_i, ByzFL ``Average``).
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation

from ._common import require


def aggregate(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None, **params) -> torch.Tensor:
    n, _ = check_aggregation("mean", updates, f, params=params, majority=False)
    if weights is None:
        return updates.mean(dim=0)
    w = torch.as_tensor(weights, dtype=updates.dtype, device=updates.device).reshape(-1)
    require(w.numel() == n, f"mean: weights must have n={n} entries, got {w.numel()}")
    require(bool(torch.isfinite(w).all()) and bool((w >= 0).all()), "mean: weights must be finite and non-negative")
    total = w.sum()
    require(float(total) > 0, "mean: weights must not all be zero")
    return (w[:, None] * updates).sum(dim=0) / total
