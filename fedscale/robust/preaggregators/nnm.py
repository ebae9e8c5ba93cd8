"""Nearest Neighbour Mixing (NNM) pre-aggregator.

Allouah, Farhadkhani, Guerraoui, Gupta, Pinot & Stephan, "Fixing by Mixing: A Recipe for
Optimal Byzantine ML under Heterogeneity", AISTATS 2023, Algorithm 1 (NNM):

    y_i = (1 / (n - f)) * sum_{j in N_i} x_j,   i = 1, ..., n,

where N_i is the set of the n - f inputs closest to x_i in L2 distance, x_i itself included.
Squared distances come from one Gram-matrix product, ||x_i||^2 + ||x_j||^2 - 2 <x_i, x_j>;
the diagonal is forced below every other entry so each input always counts itself. Ties
among equidistant neighbours are broken by ``torch.topk`` (ByzFL's ``NNM`` uses
``argpartition``; results coincide unless distances tie exactly at the cut-off).
"""

from __future__ import annotations

import torch

from fedscale.robust.distances import pairwise_sq_dists
from fedscale.robust.checks import check_preaggregation


def preaggregate(updates: torch.Tensor, *, f: int = 0, generator: torch.Generator | None = None,
                 **params) -> torch.Tensor:
    """Return the n x d matrix whose i-th row is the mean of the n - f rows nearest row i.
    Deterministic: ``generator`` is not used."""
    updates, f = check_preaggregation(updates, f, params)
    n = updates.shape[0]
    k = n - f
    if f == 0:
        return updates.mean(dim=0, keepdim=True).expand(n, -1).clone()
    dist = pairwise_sq_dists(updates)
    dist.fill_diagonal_(-1.0)  # each input is its own nearest neighbour
    neighbours = torch.topk(dist, k, dim=1, largest=False).indices
    weights = torch.zeros((n, n), dtype=updates.dtype, device=updates.device)
    weights.scatter_(1, neighbours, 1.0 / k)
    return weights @ updates
