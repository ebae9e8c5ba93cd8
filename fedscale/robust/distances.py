"""Pairwise distances between client updates, shared by the aggregators and pre-aggregators."""
from __future__ import annotations

import torch


def pairwise_sq_dists(x: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between the rows of ``x`` via one Gram product,
    ``||a||^2 + ||b||^2 - 2 a.b``, clamped at 0, with an exact zero diagonal."""
    sq = (x * x).sum(dim=1)
    dist = (sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)).clamp_min_(0.0)
    dist.fill_diagonal_(0.0)
    return dist
