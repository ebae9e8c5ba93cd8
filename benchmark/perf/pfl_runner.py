"""The light digits workload run in pfl-research, the speed peer of ``benchmark/perf/peers.py``.

pfl-research: Granqvist et al., "pfl-research: simulation framework for accelerating research
in Private Federated Learning", 2024 (arXiv:2404.06430), https://github.com/apple/pfl-research.
Install the pinned peer with ``pip install --no-deps -r tests/peers-requirements.txt``.

The workload is the one our side runs from ``benchmark/configs/digits/light.yml`` (read with
our job parser, or another job given with ``--job``): scikit-learn's
digits loaded and split by our own loader (``load_federated_data``: IID over 100 clients,
seed 233), so every pfl user holds exactly the samples of our client with that index. Each
round 10 distinct clients are drawn uniformly at random; each runs 2 plain SGD steps (lr 0.05)
of batch 8 on the MLP Flatten-Linear(64,128)-ReLU-Linear(128,10) with cross-entropy; the
updates are averaged weighted by each client's sample count (FedAvg, central SGD with lr 1
on the averaged difference), and the model is tested on the whole digits test split after
every round. One process, CPU, ``torch.set_num_threads(1)``.

How the workload maps onto pfl:

- pfl trains a user by walking its ``Dataset`` in order, in consecutive slices of
  ``local_batch_size``, stopping after ``local_num_steps`` (``PyTorchModel.do_multiple_epochs_of``).
  Handed a client's own 14 or 15 samples, 2 steps of 8 would be one batch of 8 and one of 6
  or 7. So each sampled user's ``Dataset`` is instead built, when pfl asks for it, from the
  2 x 8 sample positions our executors draw for that client in that round (per-epoch
  shuffles seeded by (job seed, round, client): ``fedscale.cloud.execution.torch_client``),
  laid out batch after batch; pfl's ``local_num_steps=2``, ``local_batch_size=8`` then train
  exactly those two batches of 8. (A client holding fewer samples than a batch would train
  on batches of all it has on our side; the light split has none.)
- The user's ``Dataset`` therefore has 16 rows, not the client's sample count, so pfl's
  ``WeightByDatapoints`` would weight every client by 16; a small ``WeightingStrategy``
  weights each update by the client's real sample count instead.
- pfl's ``get_user_sampler('random')`` draws each user independently, so a cohort can hold a
  client twice; the user sampler here draws 10 distinct clients per round.
- pfl's ``CentralEvaluationCallback`` tests before training and then after every
  ``frequency``-th central iteration except the first, so it would skip round 1; a callback
  of our own tests after every round and prints that round's line.
- ``evaluation_frequency`` of ``NNAlgorithmParams`` controls pfl's per-user evaluation before
  and after local training, which our side does not do; it is set past the last round, but
  pfl always does it on central iteration 0, so round 1 also evaluates its 10 users' own
  data (a few milliseconds; round 1 is left out of the round-time median).

Output: one JSON line per finished round on stdout, ``{"round", "wall_time", "accuracy"}``,
written after that round's test; everything pfl prints or logs goes to stderr. Exit status 3
with a one-line message on stderr when pfl cannot be imported.
Usage: python benchmark/perf/pfl_runner.py [--rounds N] [--job light.yml]
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fedscale.cloud.config.components import DataConfig  # noqa: E402
from fedscale.cloud.execution.torch_client import batch_positions, client_seed  # noqa: E402
from fedscale.dataloaders.federated import FederatedData, load_federated_data  # noqa: E402
from fedscale.dataloaders.models import build_model  # noqa: E402

LIGHT_JOB = ROOT / "benchmark" / "configs" / "digits" / "light.yml"
PFL_MISSING = 3
PFL_MISSING_MESSAGE = "pfl is not installed (pip install --no-deps -r tests/peers-requirements.txt)"
DEFAULT_ROUNDS = 200


@dataclass(frozen=True)
class Workload:
    """What one run trains: the data split and the per-round training settings."""

    data: DataConfig
    seed: int
    model: str
    clients_per_round: int
    local_steps: int
    batch_size: int
    learning_rate: float
    test_batch_size: int
    torch_threads: int

    @classmethod
    def from_job(cls, path: Path) -> Workload:
        """The workload of a job file, read with our job parser."""
        from fedscale.cloud.config_parser import load_job

        conf = load_job(str(path)).conf
        training = conf.training
        return cls(data=conf.data, seed=training.seed, model=training.model,
                   clients_per_round=training.num_participants, local_steps=training.local_steps,
                   batch_size=training.batch_size, learning_rate=training.learning_rate,
                   test_batch_size=training.test_bsz, torch_threads=conf.cluster.torch_threads)


class DistinctClientsPerRound:
    """pfl user sampler: each block of ``per_round`` calls is one round's clients, drawn
    uniformly without replacement. Returns user ids ``(round, client)`` so the user's data
    can be built for that round."""

    def __init__(self, num_clients: int, per_round: int, seed: int) -> None:
        if not 1 <= per_round <= num_clients:
            raise ValueError(f"cannot draw {per_round} distinct clients of {num_clients}")
        self.num_clients = num_clients
        self.per_round = per_round
        self.rng = np.random.default_rng(seed)
        self.round_index = 0
        self.pending: list[int] = []

    def __call__(self) -> tuple[int, int]:
        if not self.pending:
            self.round_index += 1
            self.pending = self.rng.choice(self.num_clients, self.per_round, replace=False).tolist()
        return self.round_index, self.pending.pop(0)


def round_rows(data: FederatedData, workload: Workload, round_index: int, client: int) -> torch.Tensor:
    """Training-set rows of the batches ``client`` trains on in ``round_index``, batch after
    batch, as our executors draw them."""
    own = torch.as_tensor(data.client_indices[client])
    generator = torch.Generator().manual_seed(client_seed(workload.seed, round_index, client))
    positions = batch_positions(len(own), workload.local_steps, workload.batch_size, generator)
    return own[positions.reshape(-1)]


class Classifier(nn.Module):
    """A network with the ``loss`` and ``metrics`` methods ``pfl.model.pytorch.PyTorchModel``
    calls: mean cross-entropy for training; summed loss and correct counts, weighted by the
    batch size, for testing."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.train()
        return self.loss_fn(self.net(x), y)

    @torch.no_grad()
    def metrics(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        from pfl.metrics import Weighted

        self.eval()
        logits = self.net(x)
        loss = nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct = (logits.argmax(1) == y).sum().item()
        return {"loss": Weighted(loss, len(y)), "accuracy": Weighted(correct, len(y))}


def run(workload: Workload, rounds: int, out: TextIO) -> None:
    """Run ``rounds`` rounds of ``workload`` in pfl, writing each round's JSON line to ``out``."""
    from pfl.aggregate.simulate import SimulatedBackend
    from pfl.aggregate.weighting import WeightingStrategy
    from pfl.algorithm import FederatedAveraging, NNAlgorithmParams
    from pfl.callback.base import TrainingProcessCallback
    from pfl.context import UserContext
    from pfl.data.dataset import Dataset
    from pfl.data.federated_dataset import FederatedDataset
    from pfl.hyperparam import NNEvalHyperParams, NNTrainHyperParams
    from pfl.metrics import Metrics, StringMetricName
    from pfl.model.pytorch import PyTorchModel
    from pfl.stats import WeightedStatistics

    torch.set_num_threads(workload.torch_threads)
    np.random.seed(workload.seed)  # pfl's backend and dataset seed their own states from numpy's
    data = load_federated_data(workload.data, workload.seed)
    counts = data.client_sample_counts
    x, y = data.train.x, data.train.y
    torch.manual_seed(workload.seed)
    net = build_model(workload.model, tuple(data.train.input_shape), data.train.num_classes)
    classifier = Classifier(net)

    class WeightBySampleCount(WeightingStrategy):
        """Weight a user's update by its client's sample count, not its ``Dataset`` length."""

        def postprocess_one_user(self, *, stats: WeightedStatistics,
                                 user_context: UserContext) -> tuple[WeightedStatistics, Metrics]:
            _, client = user_context.user_id
            stats.reweight(int(counts[client]))
            return stats, Metrics()

    accuracy_name = StringMetricName("accuracy")
    test_set = Dataset((data.test.x, data.test.y))
    eval_params = NNEvalHyperParams(local_batch_size=workload.test_batch_size)

    class TestEveryRound(TrainingProcessCallback):
        """Test the central model after every round and write that round's line."""

        def after_central_iteration(self, aggregate_metrics: Metrics, model: PyTorchModel, *,
                                    central_iteration: int) -> tuple[bool, Metrics]:
            metrics = model.evaluate(test_set, eval_params=eval_params)
            accuracy = float(metrics[accuracy_name].overall_value)
            line = {"round": central_iteration + 1, "wall_time": time.time(), "accuracy": accuracy}
            out.write(json.dumps(line) + "\n")
            out.flush()
            return False, Metrics()

    def user_dataset(user_id: tuple[int, int]) -> Dataset:
        rows = round_rows(data, workload, *user_id)
        return Dataset((x[rows], y[rows]), user_id=user_id)

    sampler = DistinctClientsPerRound(data.num_clients, workload.clients_per_round, workload.seed)
    federated = FederatedDataset(user_dataset, sampler)
    model = PyTorchModel(model=classifier, local_optimizer_create=torch.optim.SGD,
                         central_optimizer=torch.optim.SGD(classifier.parameters(), lr=1.0))
    backend = SimulatedBackend(training_data=federated, val_data=federated,
                               postprocessors=[WeightBySampleCount()])
    algorithm_params = NNAlgorithmParams(central_num_iterations=rounds, evaluation_frequency=rounds + 1,
                                         train_cohort_size=workload.clients_per_round, val_cohort_size=0)
    train_params = NNTrainHyperParams(local_num_epochs=None, local_learning_rate=workload.learning_rate,
                                      local_batch_size=workload.batch_size,
                                      local_num_steps=workload.local_steps)
    FederatedAveraging().run(algorithm_params=algorithm_params, backend=backend, model=model,
                             model_train_params=train_params, model_eval_params=eval_params,
                             callbacks=[TestEveryRound()], send_metrics_to_platform=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds to run (default 200)")
    parser.add_argument("--job", type=Path, default=LIGHT_JOB,
                        help="job file whose data and training settings to use "
                             "(default benchmark/configs/digits/light.yml)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    try:
        importlib.import_module("pfl.model.pytorch")
    except ImportError:
        print(PFL_MISSING_MESSAGE, file=sys.stderr)
        return PFL_MISSING
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    workload = Workload.from_job(args.job)
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        run(workload, args.rounds, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
