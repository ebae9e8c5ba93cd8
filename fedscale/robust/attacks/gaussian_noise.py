"""Gaussian-noise attack.

Random-noise Byzantine baseline (e.g. Blanchard et al., "Machine Learning with Adversaries:
Byzantine Tolerant Gradient Descent", NeurIPS 2017, Section 5 "Gaussian" Byzantine workers;
ByzFL's ``Gaussian(mu, sigma)``). Each Byzantine worker independently sends

    b_j = center + z_j,   z_j ~ N(mu, sigma^2 I_d),

where ``center`` is 0 (default: pure noise, ByzFL's definition) or, with
``around_mean=True``, the mean of the honest updates (a noisy copy of the honest mean).
Draws use ``generator`` so a seeded generator makes the attack reproducible.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_attack, check_real

# the parameter a sweep's ``intensity`` sets: the noise's standard deviation
INTENSITY = "sigma"


def attack(honest: torch.Tensor, *, num_byzantine: int, generator: torch.Generator | None = None,
           sigma: float = 1.0, mu: float = 0.0, around_mean: bool = False, **params) -> torch.Tensor:
    """Return num_byzantine x d Gaussian Byzantine updates.

    Args:
        sigma: noise standard deviation, finite and >= 0.
        mu: noise mean (same on every coordinate), finite.
        around_mean: if True, add the noise to the honest mean instead of to zero.
    """
    honest, num_byzantine = check_attack(honest, num_byzantine, params)
    sigma = check_real("sigma", sigma, nonnegative=True)
    mu = check_real("mu", mu)
    if not isinstance(around_mean, bool):
        raise ValueError(f"around_mean must be a bool, got {around_mean!r}")
    d = honest.shape[1]
    noise = torch.randn((num_byzantine, d), generator=generator,
                        dtype=honest.dtype, device=honest.device)
    out = noise * sigma + mu
    if around_mean:
        out = out + honest.mean(dim=0, keepdim=True)
    return out
