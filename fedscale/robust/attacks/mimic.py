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

from ._common import check_honest, check_num_byzantine, reject_unknown, repeat_row


def attack(
    honest: torch.Tensor,
    *,
    num_byzantine: int,
    generator: torch.Generator | None = None,
    index: int = 0,
    **params,
) -> torch.Tensor:
    """Return num_byzantine copies of honest row ``index`` (num_byzantine x d).

    Args:
        index: row of ``honest`` to copy, 0 <= index < h.
    """
    reject_unknown(params)
    honest = check_honest(honest)
    num_byzantine = check_num_byzantine(num_byzantine)
    h = honest.shape[0]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < h:
        raise ValueError(f"index must be an integer in [0, {h - 1}], got {index!r}")
    return repeat_row(honest[index], num_byzantine)
