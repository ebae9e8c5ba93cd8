"""FedProx: clients minimise their loss plus a proximal term; the server steps like FedAvg.

Li, Sahu, Zaheer, Sanjabi, Talwalkar & Smith, "Federated Optimization in Heterogeneous
Networks", MLSys 2020, Algorithm 2 (FedProx). Client k approximately minimises its local
objective (Eq. 2)

    h_k(w; w^t) = F_k(w) + (mu/2) ||w - w^t||^2

by SGD from the global model ``w^t``, each step ``w <- w - lr (g + mu (w - w^t))``; the server
averages the results as FedAvg does. ``mu`` is FedScale's ``proxy_mu``, sent to the clients
as ``TrainConfig.proximal_mu``; ``ProximalTerm`` is the client's side of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from fedscale.cloud.aggregation.server_algorithms.fedavg import FedAvg

if TYPE_CHECKING:
    import torch


class FedProx(FedAvg):
    """FedAvg's server step; sends ``mu`` to the clients."""

    name = "fed-prox"

    class Config(FedAvg.Config):
        proxy_mu: float = Field(0.1, ge=0, description="fed-prox: weight mu of the proximal term "
                                "(mu/2)||w - w_global||^2 each client adds to its local loss (Li et al., MLSys 2020).")

    config: Config

    def client_settings(self) -> dict[str, float]:
        return {"proximal_mu": self.config.proxy_mu}


@dataclass(frozen=True)
class ProximalTerm:
    """A client's proximal term: the global model ``w^t`` it started from and ``lr * mu``."""

    anchor: torch.Tensor
    weight: float

    def pull(self, parameters: torch.Tensor) -> None:
        """The proximal part of one local SGD step, in place on the flat parameter vector, after the
        gradient is computed and before the optimiser applies it: ``w <- w - lr mu (w - w^t)``, one
        interpolation towards ``w^t``."""
        parameters.lerp_(self.anchor, self.weight)


def proximal_term(parameters: torch.Tensor, learning_rate: float, mu: float) -> ProximalTerm | None:
    """The proximal term of a client starting from ``parameters`` (copied) with step size
    ``learning_rate``; None when ``mu`` is 0, i.e. plain local SGD."""
    return ProximalTerm(parameters.clone(), learning_rate * mu) if mu else None
