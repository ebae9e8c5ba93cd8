"""The server algorithm interface: how a round's client updates become the next global model.

Each round the aggregator asks the job's server algorithm, chosen by ``gradient_policy``, for
three things: the fields it sets on the clients' ``TrainConfig`` (``client_settings``), the
rows and weights the round's aggregation step takes in place of the raw client updates
(``rows``), and the new global model from the aggregated update (``step``). The aggregation
step between ``rows`` and ``step`` (FedAvg's weighted mean or a robust rule from
``fedscale.robust``) is not the algorithm's concern.

An algorithm declares the job_conf keys it reads as its ``Config``, a frozen pydantic model
whose field names, defaults and bounds are those of the keys; it is built from that
``Config`` and the clients' learning rate, and keeps any state across rounds on itself, which
``state_dict`` hands out as plain arrays for the job's checkpoint and ``load_state_dict`` takes back.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import torch


class ServerAlgorithm(ABC):
    """One federated optimisation rule on the server; ``name`` is its ``gradient_policy`` value."""

    name: ClassVar[str]

    class Config(BaseModel):
        """The job_conf keys the algorithm reads (none here)."""

        model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, config: Config, learning_rate: float) -> None:
        self.config = config
        self.learning_rate = learning_rate

    def client_settings(self) -> dict[str, float]:
        """Fields to set on the clients' ``TrainConfig``: none unless the algorithm trains its
        clients differently."""
        return {}

    def rows(self, updates: torch.Tensor, weights: torch.Tensor,
             losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows and weights the round's aggregation step takes, from the n x d client updates,
        their weights (sample counts) and the clients' losses at the global model: by default the
        updates and weights as they are."""
        return updates, weights

    @abstractmethod
    def step(self, model: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """The new global model from the current one and the round's aggregated update."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """The state kept across rounds, as named arrays (none here)."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Take back what ``state_dict`` returned, so the next ``step`` is the one that would have followed."""
