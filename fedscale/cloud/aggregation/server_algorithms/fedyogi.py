"""FedYogi: the second moment moves towards the squared update by an additive, sign-controlled step.

Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2 (FedYogi), after Yogi
(Zaheer et al., NeurIPS 2018): ``v_t = v_{t-1} - (1 - b2) Delta_t^2 sign(v_{t-1} - Delta_t^2)``;
the rest of the step is FedOpt's (``fedopt.py``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from fedscale.cloud.aggregation.server_algorithms.fedopt import DecayingFedOpt

if TYPE_CHECKING:
    import torch


class FedYogi(DecayingFedOpt):
    name = "fed-yogi"

    def second_moment(self, v: torch.Tensor, square: torch.Tensor) -> torch.Tensor:
        return v - (1 - self.config.yogi_beta2) * square * (v - square).sign()
