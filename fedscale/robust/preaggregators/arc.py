"""Adaptive Robust Clipping (ARC) pre-aggregator.

Allouah, Guerraoui, Gupta, Jellouli, Rizk & Stephan, "The Vital Role of Gradient Clipping in
Byzantine-Resilient Distributed Learning", 2024 (arXiv:2405.14432), Algorithm 1 (ARC).

With k = floor(2 (f / n) (n - f)), sort the inputs by L2 norm in non-increasing order and let
C be the norm of the (k + 1)-th largest one. Every input is then clipped to C,

    y_i = min(1, C / ||x_i||_2) * x_i,

so exactly the k largest-norm inputs are scaled down (inputs tied with C are left as they
are). When k = 0 (e.g. f = 0) the inputs are returned unchanged. This matches ByzFL's ``ARC``,
except that k is computed in exact integer arithmetic, (2 f (n - f)) // n: ByzFL's floating-point
``int((2 * f / n) * (n - f))`` is one lower in rare cases where the product is an exact integer
(e.g. n = 121, f = 66).
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_preaggregation

from .static_clipping import clip_rows


def num_clipped(n: int, f: int) -> int:
    """Return k = floor(2 (f/n) (n - f)), the number of inputs ARC clips."""
    return (2 * f * (n - f)) // n


def preaggregate(updates: torch.Tensor, *, f: int = 0, generator: torch.Generator | None = None,
                 report: dict | None = None, **params) -> torch.Tensor:
    """Return ``updates`` (n x d) with all rows clipped to the (k+1)-th largest row norm; the rows
    scaled down go to ``report["clipped"]``. Deterministic: ``generator`` is not used."""
    updates, f = check_preaggregation(updates, f, params)
    n = updates.shape[0]
    k = num_clipped(n, f)
    if k == 0:
        return updates.clone()
    norms = torch.linalg.vector_norm(updates, dim=1)
    threshold = torch.sort(norms, descending=True).values[k]
    return clip_rows(updates, threshold, report, norms)
