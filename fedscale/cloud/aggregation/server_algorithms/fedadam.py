"""FedAdam: the second moment is an exponential moving average of the squared updates.

Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2 (FedAdam):
``v_t = b2 v_{t-1} + (1 - b2) Delta_t^2``; the rest of the step is FedOpt's (``fedopt.py``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from fedscale.cloud.aggregation.server_algorithms.fedopt import DecayingFedOpt

if TYPE_CHECKING:
    import torch


class FedAdam(DecayingFedOpt):
    name = "fed-adam"

    def second_moment(self, v: torch.Tensor, square: torch.Tensor) -> torch.Tensor:
        b2 = self.config.yogi_beta2
        return b2 * v + (1 - b2) * square
