"""Mimic attack.

Karimireddy, He & Jaggi, "Byzantine-Robust Learning on Heterogeneous Datasets via Bucketing",
ICLR 2022, Section 5 ("mimic"): all Byzantine workers copy the update of one chosen honest
worker, over-representing its data in the aggregate,

    b = x_index.

This is the static variant of ByzFL's ``Mimic(epsilon)`` (ByzFL's epsilon is ``index`` here);
the paper's optimised choice of the worker to copy is not implemented.
"""

from __future__ import annotations

import torch

from fedscale.robust.checks import check_attack, check_int

from ._common import repeat_row


def attack(honest: torch.Tensor, *, num_byzantine: int, generator: torch.Generator | None = None,
           index: int = 0, **params) -> torch.Tensor:
    """Return num_byzantine copies of honest row ``index`` (num_byzantine x d).

    Args:
        index: row of ``honest`` to copy, 0 <= index < h.
    """
    honest, num_byzantine = check_attack(honest, num_byzantine, params)
    h = honest.shape[0]
    index = check_int("index", index, low=0, high=h - 1)
    return repeat_row(honest[index], num_byzantine)
