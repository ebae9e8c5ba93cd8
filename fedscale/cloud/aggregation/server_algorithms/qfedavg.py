"""q-FedAvg: fair resource allocation, the round's updates reweighted by the clients' losses.

Li, Sanjabi, Beirami & Smith, "Fair Resource Allocation in Federated Learning", ICLR 2020,
Algorithm 2 (q-FedAvg). With ``L = 1 / learning_rate`` (the paper's Lipschitz estimate, the
inverse of the clients' step size), client k's update ``u_k = w_k - w^t`` and its loss
``F_k = F_k(w^t)`` at the global model:

    Delta w_k = L (w^t - w_k) = -L u_k
    Delta_k   = F_k^q Delta w_k
    h_k       = q F_k^(q-1) ||Delta w_k||^2 + L F_k^q
    w^{t+1}   = w^t - sum_k Delta_k / sum_k h_k.

With rows ``r_k = -Delta_k / h_k = L F_k^q u_k / h_k`` and weights ``h_k``, the weighted mean
``sum_k h_k r_k / sum_k h_k`` is exactly ``w^{t+1} - w^t``: the rows go through the round's
aggregation step like plain updates (a robust aggregator consumes them, with or without the
weights) and the server adds the result as FedAvg does. q = 0 gives ``h_k = L`` and
``r_k = u_k``, the unweighted mean of the updates; larger q weights clients with higher loss
more. ``q`` is FedScale's ``qfed_q``.

``F_k`` is the loss of the client's first local mini-batch, computed at ``w^t`` by its first
step anyway: a one-batch estimate of the paper's loss on the client's data, at no extra
forward pass. Losses are floored at 1e-10 so ``F_k^(q-1)`` stays finite for q < 1.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from fedscale.cloud.aggregation.server_algorithms.fedavg import FedAvg

if TYPE_CHECKING:
    import torch

MIN_LOSS = 1e-10


def q_fedavg_rows(updates: torch.Tensor, losses: torch.Tensor, q: float,
                  learning_rate: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows ``r_k`` (n x d, the dtype of ``updates``) and weights ``h_k`` (n, the dtype of
    ``losses``, in which the per-client scalars are computed) of q-FedAvg for the n x d
    ``updates`` ``u_k`` and the clients' losses ``F_k`` at the global model. Imports torch only
    when called, so reading the registry of algorithms (as a job check does) stays light."""
    from torch.linalg import vector_norm

    lipschitz = 1.0 / learning_rate
    loss = losses.clamp_min(MIN_LOSS)
    step_sq = lipschitz ** 2 * vector_norm(updates, dim=1, dtype=loss.dtype).square()
    loss_q = loss.pow(q)
    h = q * loss.pow(q - 1) * step_sq + lipschitz * loss_q
    return updates * (lipschitz * loss_q / h).to(updates.dtype)[:, None], h


class QFedAvg(FedAvg):
    """q-FedAvg's rows and weights; FedAvg's server step."""

    name = "q-fedavg"

    class Config(FedAvg.Config):
        qfed_q: float = Field(1.0, ge=0, description=(
            "q-fedavg: fairness exponent q; 0 is the plain mean of the updates, larger q weights clients "
            "with higher loss more (Li et al., ICLR 2020)."))

    config: Config

    def rows(self, updates: torch.Tensor, weights: torch.Tensor,
             losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return q_fedavg_rows(updates, losses, self.config.qfed_q, self.learning_rate)
