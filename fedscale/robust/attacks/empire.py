"""Fall of Empires / inner-product manipulation attack.

Xie, Koyejo & Gupta, "Fall of Empires: Breaking Byzantine-tolerant SGD by Inner Product
Manipulation", UAI 2019 (PMLR 115, 2020), Section 4: every Byzantine worker sends

    b = -epsilon * (1/h) * sum_{i=1}^{h} x_i,   epsilon > 0,

so that the inner product between the aggregate and the true gradient becomes negative.
ByzFL's ``InnerProductManipulation(tau)`` sends -tau * mean, i.e. epsilon = tau (both default
to 2); earlier ByzFL releases called it ``FallOfEmpires(tau)`` and sent (1 - tau) * mean.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_attack, check_real

from ._common import repeat_row

# the parameter a sweep's ``intensity`` sets: the scale of the reversed honest mean
INTENSITY = "epsilon"


def attack(honest: torch.Tensor, *, num_byzantine: int, generator: torch.Generator | None = None,
           epsilon: float = 2.0, **params) -> torch.Tensor:
    """Return num_byzantine copies of ``-epsilon * mean(honest)`` (num_byzantine x d).

    Args:
        epsilon: attack strength, a finite real > 0.
    """
    honest, num_byzantine = check_attack(honest, num_byzantine, params)
    epsilon = check_real("epsilon", epsilon, positive=True)
    return repeat_row(-epsilon * honest.mean(dim=0), num_byzantine)
