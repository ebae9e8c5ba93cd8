"""FedAvg's server step: add the aggregated update to the global model.

McMahan, Moore, Ramage, Hampson & Agüera y Arcas, "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017, Algorithm 1 (FederatedAveraging):
``w_{t+1} = sum_k (n_k / n) w^k_{t+1}``, i.e. ``w_{t+1} = w_t + delta`` with ``delta`` the
sample-weighted mean of the client updates ``w^k_{t+1} - w_t`` (or what a robust rule makes of
them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from fedscale.cloud.aggregation.server_algorithms.base import ServerAlgorithm

if TYPE_CHECKING:
    import torch


class FedAvg(ServerAlgorithm):
    """``w <- w + delta``."""

    name = "fed-avg"

    def step(self, model: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return model + delta
