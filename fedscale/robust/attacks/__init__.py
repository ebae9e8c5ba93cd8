"""Byzantine attacks: functions of the round's honest updates returning Byzantine updates.

Each module exposes ``attack(honest, *, num_byzantine, generator=None, **params)`` mapping the
h x d honest updates to num_byzantine x d Byzantine updates. ``ATTACKS`` maps names to them.
Label flipping is a data attack run on the executor and is not part of this library.
"""

from __future__ import annotations

from . import empire, gaussian_noise, inf, little, mimic, model_poisoning, sign_flip

ATTACKS = {
    "empire": empire.attack,
    "gaussian_noise": gaussian_noise.attack,
    "inf": inf.attack,
    "little": little.attack,
    "mimic": mimic.attack,
    "model_poisoning": model_poisoning.attack,
    "sign_flip": sign_flip.attack,
}

__all__ = ["ATTACKS", "empire", "gaussian_noise", "inf", "little", "mimic",
           "model_poisoning", "sign_flip"]
