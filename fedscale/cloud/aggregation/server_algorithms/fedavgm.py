"""FedAvgM: FedAvg with momentum on the server.

Hsu, Qi & Brown, "Measuring the Effects of Non-Identical Data Distribution for Federated
Visual Classification", arXiv:1909.06335, 2019 (FedAvgM): ``v <- beta v + Delta w``,
``w <- w - eta v``, with ``Delta w`` the weighted mean of ``w - w_k`` and ``eta`` the server
learning rate. With ``delta = -Delta w`` the aggregated update:

    m <- beta m + delta          (m starts at 0)
    w <- w + eta m

``beta`` is ``server_momentum``, ``eta`` is ``server_learning_rate``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from fedscale.cloud.aggregation.server_algorithms.base import ServerAlgorithm

if TYPE_CHECKING:
    import torch


class FedAvgM(ServerAlgorithm):
    """Server momentum ``m`` kept across rounds."""

    name = "fed-avgm"

    class Config(ServerAlgorithm.Config):
        server_learning_rate: float = Field(1.0, gt=0, description="fed-avgm: server learning rate.")
        server_momentum: float = Field(0.9, ge=0, lt=1, description="fed-avgm: server momentum.")

    config: Config

    def __init__(self, config: Config, learning_rate: float) -> None:
        super().__init__(config, learning_rate)
        self.m: torch.Tensor | None = None

    def step(self, model: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        if self.m is None:
            self.m = delta.new_zeros(delta.shape)
        self.m = self.config.server_momentum * self.m + delta
        return model + self.config.server_learning_rate * self.m

    def state_dict(self) -> dict[str, np.ndarray]:
        return {} if self.m is None else {"m": self.m.numpy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        import torch

        self.m = torch.from_numpy(state["m"]) if "m" in state else None
