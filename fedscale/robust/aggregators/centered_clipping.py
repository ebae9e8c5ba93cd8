"""Centered clipping (CC).

Karimireddy, He, Jaggi, "Learning from History for Byzantine Robust Optimization", ICML 2021,
Eq. (CC) / Algorithm 2, as in ByzFL ``CenteredClipping``:

    v_0 = m,   v_{l+1} = v_l + (1/n) sum_i (x_i - v_l) * min(1, tau / ||x_i - v_l||),

returning v_L.  Defaults (ByzFL): m = 0 (pass the previous round's aggregate / momentum as
``m`` to use history), L = 1, tau = 100.  Pure: nothing is remembered between calls.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation
from fedscale.robust.report import note

from ._common import require


def aggregate(
    updates: torch.Tensor,
    *,
    f: int = 0,
    weights: torch.Tensor | None = None,
    m: torch.Tensor | None = None,
    L: int = 1,
    tau: float = 100.0,
    report: dict | None = None,
    **params,
) -> torch.Tensor:
    n, d = check_aggregation("centered_clipping", updates, f, weights=weights, params=params)
    require(isinstance(L, int) and not isinstance(L, bool) and L >= 0, f"centered_clipping: L must be a non-negative integer, got {L!r}")
    require(float(tau) > 0, f"centered_clipping: tau must be > 0, got {tau}")
    if m is None:
        v = torch.zeros(d, dtype=updates.dtype, device=updates.device)
    else:
        v = torch.as_tensor(m, dtype=updates.dtype, device=updates.device).reshape(-1).clone()
        require(v.numel() == d, f"centered_clipping: m must have d={d} entries, got {v.numel()}")
    for _ in range(L):
        diff = updates - v
        norms = torch.linalg.vector_norm(diff, dim=1)
        # min(1, tau/||.||); a zero difference contributes nothing whatever the factor
        scale = torch.where(norms > tau, tau / norms.clamp_min(torch.finfo(updates.dtype).tiny), torch.ones_like(norms))
        v = v + (scale @ diff) / n
        note(report, "clipped", torch.nonzero(norms > tau))
    return v
