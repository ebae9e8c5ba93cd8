"""Server update rules: how the aggregated client update moves the global model.

The aggregation step (FedAvg's sample-weighted mean, or a robust rule from
``fedscale.robust``) produces one update vector; the server rule applies it. FedAvg (McMahan
et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data", AISTATS
2017, Algorithm 1) applies it unchanged: ``w <- w + sum_k (n_k / n) * delta_k``.
"""
from __future__ import annotations

import torch


class FedAvg:
    """Applies the aggregated update unchanged (server learning rate 1)."""

    def step(self, model: torch.Tensor, aggregated_update: torch.Tensor) -> torch.Tensor:
        return model + aggregated_update
