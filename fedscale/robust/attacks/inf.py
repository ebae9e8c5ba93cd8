"""Infinity attack.

Non-finite stress-test attack as defined by ByzFL's ``Inf`` (Gonzalez et al., "ByzFL:
Research Framework for Robust Federated Learning", arXiv:2505.24802, 2025): every
Byzantine worker sends the vector whose coordinates are all +inf,

    b = (+inf, ..., +inf) in R^d.

Unlike ByzFL (which always returns float64) the output keeps the dtype of ``honest``.
``value`` may override +inf with another constant (e.g. a very large finite number) for
experiments that need finite arithmetic; the default follows ByzFL.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_attack, check_real


def attack(honest: torch.Tensor, *, num_byzantine: int, generator: torch.Generator | None = None,
           value: float = float("inf"), **params) -> torch.Tensor:
    """Return a num_byzantine x d tensor filled with ``value`` (default +inf)."""
    honest, num_byzantine = check_attack(honest, num_byzantine, params)
    value = check_real("value", value, finite=False)
    return torch.full((num_byzantine, honest.shape[1]), value,
                      dtype=honest.dtype, device=honest.device)
