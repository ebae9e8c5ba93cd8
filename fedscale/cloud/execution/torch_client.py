"""Fixed-step local training: the work one executor does for each client it is sent.

Clients are trained back to back on one reused model object: for each client the global
model vector is copied in, ``local_steps`` plain SGD steps of ``batch_size`` samples are run
on the client's own data, and the update (trained minus global) is returned. Batches come
from per-epoch shuffles of the client's samples drawn from a generator seeded by
(job seed, round, client), so a client's update does not depend on which executor trains it
or in which order.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedscale.cloud.execution.compression import topk_sparsify
from fedscale.cloud.model_vector import ModelVector
from fedscale.dataloaders.dataset import ArrayDataset


@dataclass
class ClientUpdate:
    """One client's training outcome."""

    client_id: int
    update: torch.Tensor
    num_samples: int
    train_loss: float
    compute_seconds: float
    utility: float
    local_steps: int
    update_norm: float
    keep_fraction: float


@dataclass
class TestOutcome:
    loss_sum: float
    correct: int
    num_samples: int


def client_seed(seed: int, round_index: int, client_id: int) -> int:
    """A 63-bit seed unique to (job seed, round, client), independent of scheduling."""
    return int(np.random.SeedSequence([seed, round_index, client_id]).generate_state(1, np.uint64)[0] >> 1)


def batch_positions(num_samples: int, local_steps: int, batch_size: int,
                    generator: torch.Generator) -> torch.Tensor:
    """``local_steps x b`` positions into the client's samples, epoch by epoch without replacement.

    ``b`` is ``min(batch_size, num_samples)``: a client smaller than a batch trains on all it has.
    """
    b = min(batch_size, num_samples)
    needed = local_steps * b
    epochs = -(-needed // num_samples)
    order = torch.cat([torch.randperm(num_samples, generator=generator) for _ in range(epochs)])
    return order[:needed].view(local_steps, b)


class TorchClient:
    """Trains clients of ``train`` (sample indices per client in ``client_indices``)."""

    def __init__(self, model: nn.Module, train: ArrayDataset, client_indices: list[np.ndarray], seed: int) -> None:
        self.weights = ModelVector(model)
        self.model = model
        self.train_data = train
        self.client_indices = [torch.as_tensor(ix, dtype=torch.long) for ix in client_indices]
        self.seed = seed
        self.loss_fn = nn.CrossEntropyLoss(reduction="none")

    def train(self, global_vector: torch.Tensor, client_id: int, round_index: int, local_steps: int,
              batch_size: int, learning_rate: float, keep_fraction: float = 1.0) -> ClientUpdate:
        """Run the client's local SGD from ``global_vector`` and return its (compressed) update.

        Also measures Oort's statistical utility (Lai et al., OSDI 2021, Sec. 4.2):
        ``|B| * sqrt(mean over trained samples of loss^2)``, with ``|B|`` the distinct samples
        trained.
        """
        started = time.perf_counter()
        self.weights.load_(global_vector)
        indices = self.client_indices[client_id]
        generator = torch.Generator().manual_seed(client_seed(self.seed, round_index, client_id))
        positions = indices[batch_positions(len(indices), local_steps, batch_size, generator)]
        optimizer = torch.optim.SGD(self.model.parameters(), lr=learning_rate)
        self.model.train()
        total_loss = torch.zeros(())
        total_squared = torch.zeros(())
        for step_indices in positions:
            optimizer.zero_grad(set_to_none=True)
            losses = self.loss_fn(self.model(self.train_data.x[step_indices]), self.train_data.y[step_indices])
            loss = losses.mean()
            loss.backward()
            optimizer.step()
            total_loss += loss.detach()
            total_squared += losses.detach().square().sum()
        update = self.weights.vector - global_vector
        norm = float(update.norm())
        distinct = min(len(indices), positions.numel())
        utility = distinct * math.sqrt(float(total_squared) / positions.numel())
        return ClientUpdate(client_id, topk_sparsify(update, keep_fraction), len(indices),
                            float(total_loss) / local_steps, time.perf_counter() - started, utility,
                            local_steps, norm, keep_fraction)

    @torch.no_grad()
    def test(self, global_vector: torch.Tensor, data: ArrayDataset, batch_size: int) -> TestOutcome:
        """Summed loss and correct predictions of the global model on ``data``."""
        self.weights.load_(global_vector)
        self.model.eval()
        loss_sum, correct = 0.0, 0
        for start in range(0, len(data), batch_size):
            x, y = data.x[start:start + batch_size], data.y[start:start + batch_size]
            logits = self.model(x)
            loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        return TestOutcome(loss_sum, correct, len(data))
