"""Smallest maximum eigenvalue averaging (SMEA).

Allouah, Guerraoui, Gupta, Pinot, Stephan, "On the Privacy-Robustness-Utility Trilemma in
Distributed Learning", ICML 2023, Eq. (SMEA), as in ByzFL ``SMEA``:

    S* in argmin_{|S| = n - f} lambda_max( 1/|S| sum_{i in S} (x_i - mu_S)(x_i - mu_S)^T ),
    SMEA_f(x) = mu_{S*} = 1/(n-f) sum_{i in S*} x_i.

lambda_max is computed exactly and deterministically: the non-zero spectrum of the d x d
covariance equals that of the |S| x |S| matrix J G_S J / |S| (G_S the Gram submatrix,
J the centering matrix), so all subsets are scored with one batched ``eigvalsh``.  (ByzFL
uses a single randomised power-method step, so its choice can differ when subsets are close.)
The search is exponential: C(n, f) above ``max_subsets`` (default 20000) raises ValueError.
Ties go to the lexicographically first subset.
"""

from __future__ import annotations

import math

import torch

from fedscale.robust.checks import check_aggregation
from fedscale.robust.report import note

from ._common import k_subsets, require


def aggregate(updates: torch.Tensor, *, f: int = 0, weights: torch.Tensor | None = None, max_subsets: int = 20000,
              report: dict | None = None, **params) -> torch.Tensor:
    n, _ = check_aggregation("smea", updates, f, weights=weights, params=params)
    if f == 0:
        return updates.mean(dim=0)
    count = math.comb(n, f)
    require(count <= max_subsets, f"smea: exact subset search over C(n={n}, f={f}) = {count} subsets exceeds max_subsets={max_subsets}")
    k = n - f
    require(count * k * k <= 50_000_000, f"smea: exact subset search too large (C({n},{f}) subsets of size {k})")
    # centre globally first (translation-invariant, better conditioned Gram)
    x = updates - updates.mean(dim=0, keepdim=True)
    gram = x @ x.T
    subsets = k_subsets(n, k, x.device)
    g = gram[subsets[:, :, None], subsets[:, None, :]]  # (c, k, k)
    j = torch.eye(k, dtype=x.dtype, device=x.device) - 1.0 / k
    cov = j @ g @ j / k
    cov = 0.5 * (cov + cov.transpose(1, 2))
    lam = torch.linalg.eigvalsh(cov)[:, -1]
    best = subsets[int(torch.argmin(lam))]
    note(report, "kept", best)
    return updates[best].mean(dim=0)
