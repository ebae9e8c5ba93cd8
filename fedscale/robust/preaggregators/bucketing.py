"""Bucketing pre-aggregator.

Karimireddy, He & Jaggi, "Byzantine-Robust Learning on Heterogeneous Datasets via Bucketing",
ICLR 2022, Algorithm 1: draw a uniformly random permutation pi of the n inputs and output the
means of consecutive groups of s permuted inputs,

    y_i = (1/s) * sum_{k=(i-1)s+1}^{min(i s, n)} x_{pi(k)},   i = 1, ..., ceil(n / s).

When s does not divide n the last bucket is smaller and its output is the mean of the
remaining n mod s inputs (as in ByzFL's ``Bucketing``). ``f`` is accepted for a uniform
signature and not used; the paper suggests s <= n / (2 f) for the downstream aggregator.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_int, check_preaggregation


def preaggregate(updates: torch.Tensor, *, f: int = 0, generator: torch.Generator | None = None,
                 s: int = 1, report: dict | None = None, **params) -> torch.Tensor:
    """Return the ceil(n/s) x d means of buckets of ``s`` (an integer >= 1) rows of a random
    permutation of ``updates`` drawn with ``generator``; the input rows behind each output row go
    to ``report["groups"]``. ``f`` is checked but not used."""
    updates, _ = check_preaggregation(updates, f, params)
    n, d = updates.shape
    s = check_int("s", s, low=1)

    perm = torch.randperm(n, generator=generator, device=updates.device)
    if report is not None:
        report["groups"] = [sorted(perm[i : i + s].tolist()) for i in range(0, n, s)]
    bucket = torch.empty_like(perm)
    bucket[perm] = torch.arange(n, device=updates.device) // s  # input perm[j] goes to bucket j // s
    sums = torch.zeros(-(-n // s), d, dtype=updates.dtype, device=updates.device).index_add_(0, bucket, updates)
    return sums / torch.bincount(bucket).to(updates.dtype)[:, None]
