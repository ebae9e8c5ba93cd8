"""Server update rules: how the aggregated client update moves the global model.

FedAvg (McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized
Data", AISTATS 2017, Algorithm 1): the new global model is the sample-weighted average of the
clients' models, i.e. ``w <- w + sum_k (n_k / n) * delta_k`` with ``delta_k`` client k's update.
"""
from __future__ import annotations

import torch


def weighted_mean(updates: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Average of the rows of ``updates`` (n x d) weighted by ``weights`` (n), as one mat-vec."""
    w = weights.to(updates.dtype)
    return (w / w.sum()) @ updates


class FedAvg:
    """Applies the averaged update unchanged (server learning rate 1)."""

    def step(self, model: torch.Tensor, aggregated_update: torch.Tensor) -> torch.Tensor:
        return model + aggregated_update
