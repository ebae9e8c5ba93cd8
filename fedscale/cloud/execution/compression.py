"""Update compression applied on the client before upload: PyramidFL's upload dropout, two ways.

``topk`` (Aji & Heafield, "Sparse Communication for Distributed Gradient Descent", EMNLP 2017;
the magnitude form of PyramidFL's dropout, as in the Bliss re-implementation): keep the
``ceil(keep_fraction * d)`` entries of largest magnitude and zero the rest, so the upload
carries that fraction of the values.

``layer_random`` (PyramidFL's artifact, liecn/PyramidFL ``training/learner.py``, ``run_client``):
each tensor of the model is kept whole with probability ``keep_fraction`` and otherwise zeroed,
without rescaling; the expected share of the values sent is ``keep_fraction``.
"""
from __future__ import annotations

import math

import torch

def _check_keep_fraction(keep_fraction: float) -> None:
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")


def topk_sparsify(update: torch.Tensor, keep_fraction: float) -> torch.Tensor:
    """``update`` with all but its largest-magnitude ``keep_fraction`` of entries set to zero."""
    _check_keep_fraction(keep_fraction)
    if keep_fraction == 1.0:
        return update
    k = max(1, math.ceil(keep_fraction * update.numel()))
    kept = torch.zeros_like(update)
    index = update.abs().topk(k, sorted=False).indices
    kept[index] = update[index]
    return kept


def layer_dropout(update: torch.Tensor, sizes: tuple[int, ...], keep_fraction: float,
                  generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """``update`` (the tensors of ``sizes`` laid end to end) with each tensor kept whole when a
    uniform draw from ``generator`` is at least the dropout ``1 - keep_fraction`` (the artifact's
    test), else zeroed; and the share of the values kept."""
    _check_keep_fraction(keep_fraction)
    lengths = torch.as_tensor(sizes, dtype=torch.long)
    if int(lengths.sum()) != update.numel():
        raise ValueError(f"tensor sizes add up to {int(lengths.sum())} values, the update has {update.numel()}")
    kept = torch.rand(len(sizes), generator=generator, dtype=torch.float64) >= 1.0 - keep_fraction
    sent = torch.where(torch.repeat_interleave(kept, lengths), update, torch.zeros((), dtype=update.dtype))
    return sent, float(lengths[kept].sum()) / max(update.numel(), 1)
