"""FedOpt: adaptive server optimisers on the aggregated update (FedAdagrad, FedAdam, FedYogi).

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar & McMahan, "Adaptive Federated
Optimization", ICLR 2021, Algorithm 2. The aggregated update ``delta`` (the paper's
``Delta_t``) is the server's pseudo-gradient:

    m <- b1 m + (1 - b1) delta                  (m starts at 0)
    v <- second-moment rule of delta^2          (v starts at tau^2, the paper's v_{-1} >= tau^2)
    w <- w + eta m / (sqrt(v) + tau)

Only the second-moment rule differs between FedAdagrad, FedAdam and FedYogi; each subclass
gives its own, FedAdam's and FedYogi's through ``DecayingFedOpt`` with its decay ``b2``.
``eta``, ``tau``, ``b1`` and ``b2`` are FedScale's ``yogi_eta``, ``yogi_tau``, ``yogi_beta``
and ``yogi_beta2``, declared here once for all of them.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from fedscale.cloud.aggregation.server_algorithms.base import ServerAlgorithm

if TYPE_CHECKING:
    import torch


class FedOpt(ServerAlgorithm):
    """Algorithm 2's first moment ``m``, second moment ``v`` and step, kept across rounds."""

    class Config(ServerAlgorithm.Config):
        yogi_eta: float = Field(3e-3, gt=0, description="fed-yogi/fed-adam/fed-adagrad: server learning rate.")
        yogi_tau: float = Field(1e-8, gt=0, description="fed-yogi/fed-adam/fed-adagrad: adaptivity constant.")
        yogi_beta: float = Field(0.9, ge=0, lt=1,
                                 description="fed-yogi/fed-adam/fed-adagrad: decay of the first moment.")

    config: Config

    def __init__(self, config: Config, learning_rate: float) -> None:
        super().__init__(config, learning_rate)
        self.m: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    @abstractmethod
    def second_moment(self, v: torch.Tensor, square: torch.Tensor) -> torch.Tensor:
        """The new ``v`` from the previous one and ``delta^2``."""

    def step(self, model: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        c = self.config
        if self.m is None:
            self.m = delta.new_zeros(delta.shape)
            self.v = delta.new_full(delta.shape, c.yogi_tau ** 2)
        self.m = c.yogi_beta * self.m + (1 - c.yogi_beta) * delta
        self.v = self.second_moment(self.v, delta * delta)
        return model + c.yogi_eta * self.m / (self.v.sqrt() + c.yogi_tau)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {} if self.m is None else {"m": self.m.numpy(), "v": self.v.numpy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        import torch

        self.m, self.v = (torch.from_numpy(state["m"]), torch.from_numpy(state["v"])) if "m" in state else (None, None)


class DecayingFedOpt(FedOpt):
    """FedOpt whose second moment decays at rate ``b2`` (FedAdam, FedYogi)."""

    class Config(FedOpt.Config):
        yogi_beta2: float = Field(0.99, ge=0, lt=1, description="fed-yogi/fed-adam: decay of the second moment.")

    config: Config
