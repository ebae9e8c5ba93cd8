"""Fixed-step local training: the work one executor does for each client it is sent.

Clients are trained back to back on one reused model object: for each client the global
model vector is copied in, ``local_steps`` plain SGD steps of ``batch_size`` samples are run
on the client's own data, and the update (trained minus global) is returned. Batches come
from per-epoch shuffles of the client's samples drawn from a generator seeded by
(job seed, round, client), so a client's update does not depend on which executor trains it
or in which order.

With ``proximal_mu`` > 0 the client minimises FedProx's local objective, adding its
proximal term to each step (``fedscale.cloud.aggregation.server_algorithms.fedprox``).

The loss and the test score follow the data set's task, chosen once per data set
(``OBJECTIVES``): a classifier's (B, C) logits are scored against (B,) labels, a language model's
(B, T, V) logits against (B, T) next tokens, pad positions left out.

A Byzantine client under a data attack (``fedscale.robust.attacks.DATA_ATTACKS``, e.g. label
flipping) trains the same way on its altered labels, computed once when its run starts.

A client that cannot train or whose training goes wrong for reasons of its own (no samples, a
batch smaller than the model's BatchNorm layers take, a Byzantine mark without a data attack, a
diverged run, a device that goes offline) raises
``ClientFailure``: the round goes on without it. Any other exception is a bug.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from fedscale.cloud.aggregation.server_algorithms.fedprox import ProximalTerm, proximal_term
from fedscale.cloud.execution.compression import layer_dropout, topk_sparsify
from fedscale.cloud.model_vector import ModelVector
from fedscale.dataloaders.dataset import CLASSIFICATION, NEXT_WORD, PAD_ID, AnyDataset
from fedscale.dataloaders.models.batch_norm import smallest_training_batch


class ClientFailure(Exception):
    """A client-level problem that makes this client fail the round; the message is the reason."""


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
    initial_loss: float


@dataclass
class TestOutcome:
    loss_sum: float
    correct: int
    num_samples: int


@dataclass(frozen=True)
class Objective:
    """How a task scores a model's outputs. ``losses(logits, targets)`` gives each sample's loss
    (B,) and the batch's loss to minimise; ``scores(logits, targets)`` gives a test batch's summed
    loss, its correct predictions and how many predictions were scored."""

    losses: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
    scores: Callable[[Tensor, Tensor], tuple[float, int, int]]


def classification_losses(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Each sample's cross-entropy and their mean."""
    losses = nn.functional.cross_entropy(logits, labels, reduction="none")
    return losses, losses.mean()


def classification_scores(logits: Tensor, labels: Tensor) -> tuple[float, int, int]:
    """Summed cross-entropy, correctly classified samples, samples."""
    return (float(nn.functional.cross_entropy(logits, labels, reduction="sum")),
            int((logits.argmax(1) == labels).sum()), len(labels))


def _token_losses(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Each position's cross-entropy (0 at pads) and the mask of the scored (non-pad) positions."""
    losses = nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD_ID, reduction="none")
    return losses, targets != PAD_ID


def next_word_losses(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Each sequence's mean cross-entropy over its non-pad next tokens, and the mean over all
    non-pad tokens of the batch (so a long sequence weighs as many tokens as it scores)."""
    losses, scored = _token_losses(logits, targets)
    counts = scored.sum(1)
    return losses.sum(1) / counts.clamp(min=1), losses.sum() / counts.sum()


def next_word_scores(logits: Tensor, targets: Tensor) -> tuple[float, int, int]:
    """Summed cross-entropy of the non-pad next tokens, those predicted right, their number."""
    losses, scored = _token_losses(logits, targets)
    return float(losses.sum()), int(((logits.argmax(-1) == targets) & scored).sum()), int(scored.sum())


OBJECTIVES: dict[str, Objective] = {CLASSIFICATION: Objective(classification_losses, classification_scores),
                                    NEXT_WORD: Objective(next_word_losses, next_word_scores)}

DROPOUT_STREAM = 1   # ``client_seed`` stream of the upload dropout's draws, apart from the batches'


def client_seed(seed: int, round_index: int, client_id: int, *stream: int) -> int:
    """A 63-bit seed unique to (job seed, round, client[, stream]), independent of scheduling."""
    entropy = [seed, round_index, client_id, *stream]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


class BatchStream:
    """A client's training batches, epoch after epoch, each epoch a fresh shuffle without replacement.

    Batches hold ``min(batch_size, num_samples)`` positions: a client smaller than a batch trains
    on all it has. Drawing n batches at once or one at a time gives the same sequence.
    """

    def __init__(self, num_samples: int, batch_size: int, generator: torch.Generator) -> None:
        self.num_samples = num_samples
        self.size = min(batch_size, num_samples)
        self.generator = generator
        self._pending = torch.empty(0, dtype=torch.long)

    def take(self, steps: int) -> torch.Tensor:
        """The next ``steps x size`` positions into the client's samples."""
        needed = steps * self.size
        epochs = -(-max(needed - len(self._pending), 0) // self.num_samples)
        order = torch.cat([self._pending] + [torch.randperm(self.num_samples, generator=self.generator)
                                             for _ in range(epochs)])
        self._pending = order[needed:]
        return order[:needed].view(steps, self.size)


def batch_positions(num_samples: int, local_steps: int, batch_size: int,
                    generator: torch.Generator) -> torch.Tensor:
    """``local_steps`` batches of positions into the client's samples (see ``BatchStream``)."""
    return BatchStream(num_samples, batch_size, generator).take(local_steps)


@dataclass
class LocalRun:
    """Local SGD in progress on one client: its batches, the labels it trains on, its step size,
    FedProx's proximal term (None without it) and loss statistics,
    among them the loss of the first mini-batch, at the global model (q-FedAvg's ``F_k(w^t)``)."""

    client_id: int
    round_index: int
    indices: torch.Tensor
    labels: torch.Tensor
    batches: BatchStream
    learning_rate: float
    proximal: ProximalTerm | None = None
    steps: int = 0
    initial_loss: float = math.nan
    loss_sum: float = 0.0
    squared_loss_sum: float = 0.0
    samples_seen: int = 0


LabelAttack = Callable[[torch.Tensor, int], torch.Tensor]


class TorchClient:
    """Trains clients of ``train`` (sample indices per client in ``client_indices``); ``data_attack``
    maps (labels, num_classes) to the labels Byzantine clients train on."""

    def __init__(self, model: nn.Module, train: AnyDataset, client_indices: list[np.ndarray], seed: int,
                 data_attack: LabelAttack | None = None) -> None:
        self.weights = ModelVector(model)
        self.gradient = self.weights.bind_gradients()
        self.model = model
        self.train_data = train
        self.client_indices = [torch.as_tensor(ix, dtype=torch.long) for ix in client_indices]
        self.seed = seed
        self.data_attack = data_attack
        self.objective = OBJECTIVES[train.task]
        self.smallest_batch = smallest_training_batch(model, train.input_shape)

    def start(self, global_vector: torch.Tensor, client_id: int, round_index: int, batch_size: int,
              learning_rate: float, *, proximal_mu: float = 0.0, byzantine: bool = False) -> LocalRun:
        """Load the global model and set up the client's local run, with FedProx's proximal term
        if ``proximal_mu`` > 0; a ``byzantine`` client trains on labels altered by the data attack."""
        self.weights.load_(global_vector)
        if not self.model.training:
            self.model.train()
        indices = self.client_indices[client_id]
        if not len(indices):
            raise ClientFailure(f"client {client_id} holds no training samples")
        if min(batch_size, len(indices)) < self.smallest_batch:
            raise ClientFailure(f"client {client_id} trains on batches of {min(batch_size, len(indices))} sample; "
                                f"the model's BatchNorm needs {self.smallest_batch} at this input size")
        labels = self.train_data.y[indices]
        if byzantine:
            if self.data_attack is None:
                raise ClientFailure(f"client {client_id} is marked Byzantine but the job has no data attack")
            labels = self.data_attack(labels, self.train_data.num_classes)
        generator = torch.Generator().manual_seed(client_seed(self.seed, round_index, client_id))
        return LocalRun(client_id, round_index, indices, labels, BatchStream(len(indices), batch_size, generator),
                        learning_rate, proximal_term(self.weights.parameters, learning_rate, proximal_mu))

    def run_steps(self, run: LocalRun, steps: int) -> None:
        """``steps`` plain SGD steps of ``run`` on the shared model, each one operation on the flat
        parameter vector with the flat gradient (as ``torch.optim.SGD`` without momentum computes
        it, without an optimiser object per client)."""
        total_loss, total_squared = torch.zeros(()), torch.zeros(())
        parameters = self.weights.parameters
        for step, step_positions in enumerate(run.batches.take(steps)):
            self.gradient.zero_()
            losses, loss = self.objective.losses(self.model(self.train_data.x[run.indices[step_positions]]),
                                                 run.labels[step_positions])
            if step == 0 and run.steps == 0:
                run.initial_loss = float(loss.detach())
            loss.backward()
            if run.proximal is not None:
                run.proximal.pull(parameters)
            parameters.add_(self.gradient, alpha=-run.learning_rate)
            total_loss += loss.detach()
            total_squared += losses.detach().square().sum()
        run.steps += steps
        run.loss_sum += float(total_loss)
        run.squared_loss_sum += float(total_squared)
        run.samples_seen += steps * run.batches.size

    def finish(self, run: LocalRun, global_vector: torch.Tensor, keep_fraction: float,
               started: float, dropout_mode: str = "topk") -> ClientUpdate:
        """The run's update (compressed to ``keep_fraction`` by ``dropout_mode``, see
        ``compression``) and its statistics; ClientFailure if the run diverged (a non-finite loss
        or update). ``layer_random`` draws from the client's own seed stream, so reruns send the
        same tensors; its ``keep_fraction`` reported is the share of values actually kept.

        The utility is Oort's statistical utility (Lai et al., OSDI 2021, Sec. 4.2):
        ``|B| * sqrt(mean over trained samples of loss^2)``, ``|B|`` the distinct samples trained.
        """
        update = self.weights.vector - global_vector
        norm = float(update.norm())
        if not (math.isfinite(norm) and math.isfinite(run.loss_sum)):
            raise ClientFailure("the training diverged: non-finite loss or update")
        distinct = min(len(run.indices), run.samples_seen)
        utility = distinct * math.sqrt(run.squared_loss_sum / run.samples_seen) if run.samples_seen else 0.0
        sent, sent_fraction = self._drop(update, keep_fraction, dropout_mode, run)
        return ClientUpdate(run.client_id, sent, len(run.indices),
                            run.loss_sum / run.steps if run.steps else float("nan"),
                            time.perf_counter() - started, utility, run.steps, norm, sent_fraction,
                            run.initial_loss)

    def _drop(self, update: torch.Tensor, keep_fraction: float, dropout_mode: str,
              run: LocalRun) -> tuple[torch.Tensor, float]:
        """The update as uploaded under ``dropout_mode`` and the fraction of it reported as sent."""
        if dropout_mode == "topk":
            return topk_sparsify(update, keep_fraction), keep_fraction
        if dropout_mode == "layer_random":
            generator = torch.Generator().manual_seed(
                client_seed(self.seed, run.round_index, run.client_id, DROPOUT_STREAM))
            return layer_dropout(update, self.weights.sizes, keep_fraction, generator)
        raise ValueError(f"dropout_mode must be topk or layer_random, got {dropout_mode!r}")

    def train(self, global_vector: torch.Tensor, client_id: int, round_index: int, local_steps: int,
              batch_size: int, learning_rate: float, keep_fraction: float = 1.0, *, proximal_mu: float = 0.0,
              byzantine: bool = False, dropout_mode: str = "topk") -> ClientUpdate:
        """Run ``local_steps`` of the client's local SGD from ``global_vector``; return its update."""
        started = time.perf_counter()
        run = self.start(global_vector, client_id, round_index, batch_size, learning_rate, proximal_mu=proximal_mu,
                         byzantine=byzantine)
        self.run_steps(run, local_steps)
        return self.finish(run, global_vector, keep_fraction, started, dropout_mode)

    @torch.no_grad()
    def test(self, global_vector: torch.Tensor, data: AnyDataset, batch_size: int) -> TestOutcome:
        """Summed loss and correct predictions of the global model on ``data``, over its scored
        predictions: its samples, or for next-word prediction its non-pad target tokens."""
        self.weights.load_(global_vector)
        self.model.eval()
        scores = OBJECTIVES[data.task].scores
        loss_sum, correct, scored = 0.0, 0, 0
        for start in range(0, len(data), batch_size):
            batch_loss, batch_correct, batch_scored = scores(self.model(data.x[start:start + batch_size]),
                                                             data.y[start:start + batch_size])
            loss_sum += batch_loss
            correct += batch_correct
            scored += batch_scored
        return TestOutcome(loss_sum, correct, scored)
