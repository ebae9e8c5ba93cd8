"""Byzantine attacks: forged updates, or poisoned training data.

``ATTACKS`` maps names to update attacks: ``attack(honest, *, num_byzantine, generator=None,
**params)`` maps the h x d honest updates to num_byzantine x d Byzantine updates, which the
server puts in place of the Byzantine clients' rows. ``DATA_ATTACKS`` maps names to data
attacks: ``(labels, num_classes, **params) -> labels`` gives the labels a Byzantine client
trains on instead of its own; its honestly computed update on them is the attack.
"""

from __future__ import annotations

from fedscale.robust.method_table import MethodTable

ATTACKS = MethodTable(__name__, {
    "empire": "empire.attack",
    "gaussian_noise": "gaussian_noise.attack",
    "inf": "inf.attack",
    "little": "little.attack",
    "mimic": "mimic.attack",
    "model_poisoning": "model_poisoning.attack",
    "sign_flip": "sign_flip.attack",
})

DATA_ATTACKS = MethodTable(__name__, {
    "label_flip": "label_flip.flip_labels",
})
