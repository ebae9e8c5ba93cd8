"""FedAdagrad: the second moment sums the squared updates.

Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2 (FedAdagrad):
``v_t = v_{t-1} + Delta_t^2``; the rest of the step is FedOpt's (``fedopt.py``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from fedscale.cloud.aggregation.server_algorithms.fedopt import FedOpt

if TYPE_CHECKING:
    import torch


class FedAdagrad(FedOpt):
    name = "fed-adagrad"

    def second_moment(self, v: torch.Tensor, square: torch.Tensor) -> torch.Tensor:
        return v + square
