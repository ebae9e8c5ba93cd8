"""The condition check and vectorised kernels shared by the robust aggregators."""

from __future__ import annotations

import itertools

import torch

from fedscale.robust.distances import pairwise_sq_dists


def k_subsets(n: int, k: int, device: torch.device | None = None) -> torch.Tensor:
    """Every k-subset of range(n) as a (C(n, k) x k) index tensor, in lexicographic order.

    ``torch.combinations`` builds the full n^k grid first, which is out of reach for the
    k = n - f subsets the subset-search rules need; the C(n, k) rows themselves are small.
    """
    rows = list(itertools.combinations(range(n), k))
    return torch.tensor(rows, dtype=torch.long, device=device).reshape(len(rows), k)


def require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def coordinate_median(x: torch.Tensor) -> torch.Tensor:
    """Coordinate-wise median; for even n the mean of the two middle order statistics
    (numpy convention, unlike ``torch.median`` which returns the lower one)."""
    n = x.shape[0]
    if n % 2 == 1:
        return torch.median(x, dim=0).values  # a selection, about twice as fast as a full sort
    lower = torch.topk(x, n // 2 + 1, dim=0, largest=False, sorted=True).values
    return 0.5 * (lower[-2] + lower[-1])


def closest_to_center_mean(x: torch.Tensor, center: torch.Tensor, k: int) -> torch.Tensor:
    """Per coordinate, average the k entries closest (in absolute value) to ``center``; among
    equal distances the lower rows count as closer (a stable sort's order).

    A selection of the (k+1)-th smallest distance and a mask replace sorting every column
    (about 1.6x faster on 100 x 1e6).
    """
    n = x.shape[0]
    if k >= n:
        return x.mean(dim=0)
    dist = (x - center[None, :]).abs()
    threshold = torch.kthvalue(dist, k + 1, dim=0, keepdim=True).values
    closer = dist < threshold
    tied = dist == threshold
    room = k - closer.sum(dim=0, keepdim=True, dtype=torch.int32)  # tied entries still kept
    keep = closer | (tied & (tied.cumsum(dim=0, dtype=torch.int32) <= room))
    return torch.where(keep, x, 0).sum(dim=0) / k


def krum_scores(x: torch.Tensor, f: int) -> torch.Tensor:
    """Krum score of every row: sum of squared distances to its n - f - 1 nearest other rows
    (ByzFL convention: the neighbourhood of n - f points includes the point itself)."""
    n = x.shape[0]
    m = n - f - 1
    if m <= 0:
        return torch.zeros(n, dtype=x.dtype, device=x.device)
    dist = pairwise_sq_dists(x)
    # the self-distance 0 is the smallest entry of each row; skip it
    nearest = torch.sort(dist, dim=1).values[:, 1 : m + 1]
    return nearest.sum(dim=1)
