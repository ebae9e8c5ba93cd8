"""Minimum-diameter averaging (MDA).

El Mhamdi, Guerraoui, Guirguis, Hoang, Rouault, "Genuinely Distributed Byzantine Machine
Learning", PODC 2020, Sec. (MDA), as in ByzFL ``MDA``:

    S* in argmin_{S subset [n], |S| = n - f} max_{i,j in S} ||x_i - x_j||,
    MDA_f(x) = 1/(n-f) * sum_{i in S*} x_i.

Exact search when C(n, f) <= ``max_subsets`` (default 20000) and the batched
(subsets x (n-f) x (n-f)) gather stays under 5e7 elements: all subsets are scored in one
batched gather over the Gram-based distance matrix; ties go to the lexicographically first
subset (as ByzFL's ``itertools.combinations`` scan).

Beyond that, a documented greedy heuristic (not guaranteed optimal): f times, take the
current diameter pair (i, j) of the remaining set and remove whichever endpoint has the larger
sum of squared distances to the remaining points (on a tie the higher index goes, which
keeps the lexicographically first subset, like the exact search).  Force one or the
other with ``method="exact"`` / ``method="greedy"``.
"""

from __future__ import annotations

import math

import torch

from fedscale.robust.checks import check_aggregation
from fedscale.robust.distances import pairwise_sq_dists
from fedscale.robust.report import note

from ._common import k_subsets, require

_MAX_GATHER = 50_000_000  # elements of the (subsets x k x k) distance gather


def _exact(x: torch.Tensor, dist: torch.Tensor, f: int) -> torch.Tensor:
    n = x.shape[0]
    k = n - f
    subsets = k_subsets(n, k, x.device)
    sub = dist[subsets[:, :, None], subsets[:, None, :]]  # (c, k, k)
    diam = sub.flatten(1).amax(dim=1)
    return subsets[int(torch.argmin(diam))]


def _greedy(x: torch.Tensor, dist: torch.Tensor, f: int) -> torch.Tensor:
    n = x.shape[0]
    remaining = torch.ones(n, dtype=torch.bool, device=x.device)
    for _ in range(f):  # one removal per step; no loop over pairs
        pair_mask = remaining[:, None] & remaining[None, :]
        masked = torch.where(pair_mask, dist, torch.full_like(dist, -1.0))
        flat = int(torch.argmax(masked))
        i, j = divmod(flat, n)
        load = torch.where(remaining[None, :], dist, torch.zeros_like(dist)).sum(dim=1)
        a, b = (i, j) if i < j else (j, i)
        drop = a if load[a] > load[b] else b
        remaining[drop] = False
    return torch.nonzero(remaining).flatten()


def aggregate(
    updates: torch.Tensor,
    *,
    f: int = 0,
    weights: torch.Tensor | None = None,
    method: str = "auto",
    max_subsets: int = 20000,
    report: dict | None = None,
    **params,
) -> torch.Tensor:
    n, _ = check_aggregation("mda", updates, f, weights=weights, params=params)
    require(method in ("auto", "exact", "greedy"), f"mda: method must be 'auto', 'exact' or 'greedy', got {method!r}")
    require(isinstance(max_subsets, int) and max_subsets >= 1, f"mda: max_subsets must be a positive integer, got {max_subsets!r}")
    if f == 0:
        return updates.mean(dim=0)
    dist = pairwise_sq_dists(updates)  # squared distances: same argmin as distances
    k = n - f
    fits = math.comb(n, f) <= max_subsets and math.comb(n, f) * k * k <= _MAX_GATHER
    if method == "exact":
        require(fits, f"mda: exact search over C(n={n}, f={f}) subsets is too large (max_subsets={max_subsets}); use method='greedy'")
    use_exact = method == "exact" or (method == "auto" and fits)
    idx = _exact(updates, dist, f) if use_exact else _greedy(updates, dist, f)
    note(report, "kept", idx)
    return updates[idx].mean(dim=0)
