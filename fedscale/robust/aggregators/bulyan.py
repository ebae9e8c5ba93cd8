"""Bulyan.

El Mhamdi, Guerraoui, Rouault, "The Hidden Vulnerability of Distributed Learning in
Byzantium", ICML 2018, Algorithm (Bulyan, Sec. 4):

1. Selection: theta = n - 2f updates are chosen by applying Krum repeatedly, each time to the
   updates not yet chosen, moving the Krum winner into the selection set S.
2. Aggregation: per coordinate k, average the beta = theta - 2f entries of S closest to the
   coordinate-wise median of S:
   [Bulyan(x)]_k = 1/beta * sum_{j<=beta} [x_{pi_k(j)}]_k.

Requires n >= 4f + 3.  Krum scores use this package's convention (see ``krum.py``): the
n' - f - 1 nearest other remaining updates, n' being the number still remaining.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation
from fedscale.robust.distances import pairwise_sq_dists
from fedscale.robust.report import note

from ._common import closest_to_center_mean, coordinate_median, require


def select(updates: torch.Tensor, f: int) -> torch.Tensor:
    """Indices chosen by iterated Krum (n - 2f of them, in selection order)."""
    n = updates.shape[0]
    theta = n - 2 * f
    dist = pairwise_sq_dists(updates)
    remaining = torch.ones(n, dtype=torch.bool, device=updates.device)
    inf = torch.tensor(float("inf"), dtype=updates.dtype, device=updates.device)
    chosen = []
    for _ in range(theta):  # loop over selection rounds, not over pairs
        r = int(remaining.sum())
        m = r - f - 1
        if m > 0:
            masked = torch.where(remaining[None, :], dist, inf)
            scores = torch.sort(masked, dim=1).values[:, 1 : m + 1].sum(dim=1)
        else:
            scores = torch.zeros(n, dtype=updates.dtype, device=updates.device)
        scores = torch.where(remaining, scores, inf)
        i = int(torch.argmin(scores))
        chosen.append(i)
        remaining[i] = False
    return torch.tensor(chosen, dtype=torch.long, device=updates.device)


def aggregate(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None,
              report: dict | None = None, **params) -> torch.Tensor:
    n, _ = check_aggregation("bulyan", updates, f, weights=weights, params=params, majority=False)
    require(n >= 4 * f + 3, f"bulyan: needs n >= 4f + 3, got n={n}, f={f}")
    chosen = select(updates, f)
    note(report, "kept", chosen)
    sel = updates[chosen]
    beta = sel.shape[0] - 2 * f
    return closest_to_center_mean(sel, coordinate_median(sel), beta)
