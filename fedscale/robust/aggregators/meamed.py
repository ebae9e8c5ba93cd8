"""Mean around median (MeaMed).

Xie, Koyejo, Gupta, "Generalized Byzantine-tolerant SGD", arXiv:1802.10116, 2018,
Definition 5 (mean-around-median), as in ByzFL ``Meamed``: per coordinate k, average the
n - f values closest to the coordinate-wise median:
[MeaMed_f(x)]_k = 1/(n-f) * sum_{j=1}^{n-f} [x_{pi_k(j)}]_k,
where pi_k orders |[x_i]_k - median_k| non-decreasingly (ties broken by client index).
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation

from ._common import closest_to_center_mean, coordinate_median


def aggregate(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None, **params) -> torch.Tensor:
    n, _ = check_aggregation("meamed", updates, f, weights=weights, params=params)
    return closest_to_center_mean(updates, coordinate_median(updates), n - f)
