"""Coordinate-wise median.

Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal
Statistical Rates", ICML 2018, Definition 1 (coordinate-wise median):
[Median(x_1..x_n)]_k = median([x_1]_k, ..., [x_n]_k).

For even n the two middle order statistics are averaged (numpy / ByzFL-numpy convention).
``f`` is accepted for a uniform interface and only validated (needs 2f < n).
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation

from ._common import coordinate_median


def aggregate(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None, **params) -> torch.Tensor:
    n, _ = check_aggregation("median", updates, f, weights=weights, params=params)
    return coordinate_median(updates)
