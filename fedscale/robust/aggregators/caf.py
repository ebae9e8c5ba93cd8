"""Covariance-bound agnostic filter (CAF).

Allouah, Guerraoui, Stephan, "Towards Trustworthy Federated Learning with Untrusted
Participants", ICML 2025, Algorithm (CAF), as in ByzFL ``CAF``.  With weights c_i = 1:
while sum_i c_i > n - 2f:
    mu_c = sum_i c_i x_i / sum_i c_i,
    Sigma_c = sum_i c_i (x_i - mu_c)(x_i - mu_c)^T / sum_i c_i,
    (lambda, v) = top eigenpair of Sigma_c,   tau_i = ((x_i - mu_c)^T v)^2,
    c_i <- c_i (1 - tau_i / max_{j: c_j > 0} tau_j);
return the mu_c with the smallest lambda seen.

The eigenpair is exact and deterministic (from the n x n matrix B B^T with
B = diag(sqrt(c)) (X - mu_c) / sqrt(sum c), Sigma_c = B^T B, built from one Gram matrix of the
updates); ByzFL uses one randomised power-method step.  f = 0 returns the mean; if the weighted covariance vanishes the current
mu_c is returned (nothing left to filter).  The maximum runs over the points still weighted,
as in the usual weighted filter, so every round zeroes a weight and there are at most n rounds;
ByzFL 0.0.11 takes it over all points, so a round whose largest tau_j belongs to a point already
at weight 0 zeroes nothing, and with far outliers its loop can run tens of thousands of rounds.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_aggregation


def aggregate(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None, **params) -> torch.Tensor:
    n, _ = check_aggregation("caf", updates, f, weights=weights, params=params)
    x = updates
    if f == 0:
        return x.mean(dim=0)
    centred = x - x.mean(dim=0)
    gram = centred @ centred.T  # the rounds below need only this n x n matrix
    c = torch.ones(n, dtype=x.dtype, device=x.device)
    best_w, best_lam = None, float("inf")
    for _ in range(n):  # every round zeroes the largest remaining tau's weight
        c_sum = float(c.sum())
        if c_sum <= n - 2 * f:
            break
        w = c / c_sum
        gw = gram @ w
        k = gram - gw[:, None] - gw[None, :] + w @ gw  # Gram matrix of the x_i - mu_c
        s = w.sqrt()
        small = s[:, None] * k * s[None, :]
        evals, evecs = torch.linalg.eigh(0.5 * (small + small.T))
        lam = float(evals[-1])
        if best_w is None or lam < best_lam:
            best_w, best_lam = w, lam
        if lam <= 0.0:
            break
        tau = (k @ (s * evecs[:, -1])) ** 2  # lam * ((x_i - mu_c)^T v)^2; only tau / max tau is used
        c = c * (1.0 - tau / tau[c > 0].max())
    return best_w @ x
