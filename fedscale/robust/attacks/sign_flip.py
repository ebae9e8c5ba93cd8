"""Sign-flipping attack.

Allen-Zhu, Ebrahimian, Li & Alistarh, "Byzantine-Resilient Non-Convex Stochastic Gradient
Descent", ICLR 2021 (as used by ByzFL's ``SignFlipping``): every Byzantine worker sends the
negated mean of the honest updates,

    b = -(1/h) * sum_{i=1}^{h} x_i.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_attack

from ._common import repeat_row


def attack(honest: torch.Tensor, *, num_byzantine: int, generator: torch.Generator | None = None,
           **params) -> torch.Tensor:
    """Return num_byzantine copies of ``-mean(honest)`` (num_byzantine x d)."""
    honest, num_byzantine = check_attack(honest, num_byzantine, params)
    return repeat_row(-honest.mean(dim=0), num_byzantine)
