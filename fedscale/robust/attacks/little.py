"""A Little Is Enough (ALIE) attack.

Baruch, Baruch & Goldberg, "A Little Is Enough: Circumventing Defenses for Distributed
Learning", NeurIPS 2019, Algorithm 3: with n = h + f workers (h honest, f = num_byzantine),

    s = floor(n / 2 + 1) - f,        z_max = Phi^{-1}((n - s) / n),
    b_k = mu_k - z * sigma_k          for every coordinate k,

where mu and sigma are the coordinate-wise mean and standard deviation of the honest updates
and Phi is the standard normal CDF. ``z`` defaults to z_max; pass ``z`` to set it directly.
sigma is the unbiased (ddof = 1) standard deviation, as in ByzFL's ``ALittleIsEnough(tau)``,
which sends mu + tau * sigma: ByzFL's tau corresponds to ``z = -tau`` here.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch

from fedscale.robust.checks import check_attack, check_real

from ._common import repeat_row

# the parameter a sweep's ``intensity`` sets: how many standard deviations the forged update moves
INTENSITY = "z"


def z_max(n: int, f: int) -> float:
    """Return Baruch et al.'s z_max = Phi^{-1}((n - s)/n), s = floor(n/2 + 1) - f."""
    if n < 2 or f < 0 or f >= n:
        raise ValueError(f"need n >= 2 and 0 <= f < n, got n={n}, f={f}")
    s = math.floor(n / 2 + 1) - f
    if s <= 0:
        raise ValueError(
            f"z_max is undefined for f={f} of n={n} (s={s} <= 0: Byzantine majority); pass z")
    p = (n - s) / n
    if p <= 0.0:
        raise ValueError(f"z_max is undefined for n={n}, f={f} (quantile level {p}); pass z")
    return NormalDist().inv_cdf(p)


def attack(honest: torch.Tensor, *, num_byzantine: int, generator: torch.Generator | None = None,
           z: float | None = None, **params) -> torch.Tensor:
    """Return num_byzantine copies of ``mean(honest) - z * std(honest)`` (num_byzantine x d).

    Args:
        z: perturbation scale in standard deviations; None (default) uses z_max(n, f).
    """
    honest, num_byzantine = check_attack(honest, num_byzantine, params, min_rows=2)
    if z is None:
        z = z_max(honest.shape[0] + num_byzantine, num_byzantine)
    else:
        z = check_real("z", z)
    mean = honest.mean(dim=0)
    std = honest.std(dim=0, correction=1)
    return repeat_row(mean - z * std, num_byzantine)
