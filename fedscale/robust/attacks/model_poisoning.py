"""Model-poisoning (scaling / boosting) attack.

Bhagoji, Chakraborty, Mittal & Calo, "Analyzing Federated Learning through an Adversarial
Lens", ICML 2019, Section 3 (explicit boosting), and Bagdasaryan et al., "How To Backdoor
Federated Learning", AISTATS 2020, Eq. (3) (model replacement, scaling by gamma = n / eta):
the Byzantine workers send a chosen direction v scaled by a large factor,

    b = intensity * v / (||v||_2 if normalize else 1).

``direction`` chooses v:
  * ``"neg_mean"`` (default): v = -mean(honest), i.e. a boosted sign-flip that drags the
    aggregate against the honest descent direction;
  * ``"mean"``: v = mean(honest), a boosted honest update (overshoot);
  * ``"ones"``: v = (1, ..., 1);
  * a d-element tensor: an explicit target direction (e.g. a backdoor update computed by the
    attacker on its own data).
All Byzantine workers send the same vector. With ``normalize=True`` the result has L2 norm
exactly ``intensity`` (a zero direction stays zero).
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_attack, check_real

from ._common import repeat_row

# the parameter a sweep's ``intensity`` sets: the length of the forged update
INTENSITY = "intensity"

_NAMED = ("neg_mean", "mean", "ones")


def attack(honest: torch.Tensor, *, num_byzantine: int, generator: torch.Generator | None = None,
           intensity: float = 10.0, direction: str | torch.Tensor = "neg_mean", normalize: bool = False,
           **params) -> torch.Tensor:
    """Return num_byzantine copies of ``intensity * direction`` (num_byzantine x d).

    Args:
        intensity: scaling factor, a finite real > 0.
        direction: ``"neg_mean"``, ``"mean"``, ``"ones"`` or a d-element tensor.
        normalize: scale the direction to unit L2 norm before applying ``intensity``.
    """
    honest, num_byzantine = check_attack(honest, num_byzantine, params)
    intensity = check_real("intensity", intensity, positive=True)
    if not isinstance(normalize, bool):
        raise ValueError(f"normalize must be a bool, got {normalize!r}")
    d = honest.shape[1]
    if isinstance(direction, torch.Tensor):
        if direction.numel() != d:
            raise ValueError(f"direction must have {d} elements, got {direction.numel()}")
        v = direction.reshape(-1).to(dtype=honest.dtype, device=honest.device)
    elif direction == "neg_mean":
        v = -honest.mean(dim=0)
    elif direction == "mean":
        v = honest.mean(dim=0)
    elif direction == "ones":
        v = torch.ones(d, dtype=honest.dtype, device=honest.device)
    else:
        raise ValueError(f"direction must be one of {_NAMED} or a tensor, got {direction!r}")
    if normalize:
        norm = torch.linalg.vector_norm(v)
        if norm > 0:
            v = v / norm
    return repeat_row(intensity * v, num_byzantine)
