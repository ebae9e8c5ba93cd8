"""Update compression applied on the client before upload.

Top-k sparsification (Aji & Heafield, "Sparse Communication for Distributed Gradient Descent",
EMNLP 2017; used for PyramidFL's upload dropout in its magnitude form): keep the
``ceil(keep_fraction * d)`` entries of largest magnitude and zero the rest, so the upload
carries that fraction of the values.
"""
from __future__ import annotations

import math

import torch


def topk_sparsify(update: torch.Tensor, keep_fraction: float) -> torch.Tensor:
    """``update`` with all but its largest-magnitude ``keep_fraction`` of entries set to zero."""
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    if keep_fraction == 1.0:
        return update
    k = max(1, math.ceil(keep_fraction * update.numel()))
    kept = torch.zeros_like(update)
    index = update.abs().topk(k, sorted=False).indices
    kept[index] = update[index]
    return kept
