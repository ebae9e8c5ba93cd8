"""Geometric median by the smoothed Weiszfeld algorithm.

Weiszfeld, "Sur le point pour lequel la somme des distances de n points donnes est minimum",
Tohoku Math. J. 43, 1937; smoothed variant of Pillutla, Kakade, Harchaoui, "Robust Aggregation
for Federated Learning" (RFA), IEEE TSP 2022, Algorithm 2.  Approximates
argmin_z sum_i w_i ||z - x_i||_2 by iterating

    beta_i = w_i / max(nu, ||z_t - x_i||),   z_{t+1} = sum_i beta_i x_i / sum_i beta_i,

from z_0 (default: the zero vector, as ByzFL ``GeometricMedian``), until
||z_{t+1} - z_t|| <= tol * max(1, ||z_t||) or ``max_iter`` steps.
ByzFL's fixed-step variant is ``nu=0.1, max_iter=3, tol=0``.  Rows containing inf are dropped
(as in ByzFL).  Optional non-negative ``weights`` (RFA's alpha_i).
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation

from ._common import require


def aggregate(
    updates: torch.Tensor,
    *,
    f: int = 0,
    weights: torch.Tensor | None = None,
    nu: float = 0.1,
    max_iter: int = 100,
    tol: float = 1e-6,
    init: torch.Tensor | None = None,
    **params,
) -> torch.Tensor:
    n, d = check_aggregation("geometric_median", updates, f, params=params)
    require(float(nu) >= 0, f"geometric_median: nu must be >= 0, got {nu}")
    require(isinstance(max_iter, int) and not isinstance(max_iter, bool) and max_iter >= 0, f"geometric_median: max_iter must be a non-negative integer, got {max_iter!r}")
    require(float(tol) >= 0, f"geometric_median: tol must be >= 0, got {tol}")
    if weights is None:
        w = torch.ones(n, dtype=updates.dtype, device=updates.device)
    else:
        w = torch.as_tensor(weights, dtype=updates.dtype, device=updates.device).reshape(-1)
        require(w.numel() == n, f"geometric_median: weights must have n={n} entries")
        require(bool((w >= 0).all()) and float(w.sum()) > 0, "geometric_median: weights must be non-negative, not all zero")
    keep = ~torch.isinf(updates).any(dim=1)
    x, w = updates[keep], w[keep]
    require(x.shape[0] > 0, "geometric_median: every update contains inf")
    if init is None:
        z = torch.zeros(d, dtype=updates.dtype, device=updates.device)
    else:
        z = torch.as_tensor(init, dtype=updates.dtype, device=updates.device).reshape(-1).clone()
        require(z.numel() == d, f"geometric_median: init must have d={d} entries")
    floor = max(float(nu), torch.finfo(updates.dtype).tiny)
    for _ in range(max_iter):
        dist = torch.linalg.vector_norm(x - z, dim=1).clamp_min(floor)
        beta = w / dist
        z_new = (beta @ x) / beta.sum()
        step = float(torch.linalg.vector_norm(z_new - z))
        z = z_new
        if step <= tol * max(1.0, float(torch.linalg.vector_norm(z))):
            break
    return z
