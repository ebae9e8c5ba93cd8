"""The baseline every speed figure is a ratio against: a plain PyTorch loop in one process.

It trains the clients a job's run trained (read from that run's event log), round by round,
one after another on one reused model: the same data, batches and steps as our executors
(``batch_positions`` seeded by ``client_seed``), plain SGD, FedAvg weighted by sample counts,
and a test on the whole test set every ``eval_interval`` rounds. No process, RPC, log or
checkpoint: what is left is the cost of the training itself.

Run as a script it prints one JSON line per finished round, ``{"round", "wall_time"}``, so
its start-up can be timed from outside like any runner's:
``python benchmark/perf/plain_loop.py job.yml aggregator.jsonl``.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fedscale.cloud import commons  # noqa: E402
from fedscale.cloud.config_parser import JobSpec, load_job  # noqa: E402
from fedscale.cloud.execution.torch_client import batch_positions, client_seed  # noqa: E402
from fedscale.cloud.logger.events import read_events  # noqa: E402
from fedscale.dataloaders.federated import load_federated_data  # noqa: E402
from fedscale.dataloaders.models import build_model  # noqa: E402


def run_picks(log_path: Path) -> list[list[int]]:
    """The clients each round of a run trained, from its aggregator event log."""
    return [e["clients"] for e in read_events(log_path) if e["tag"] == commons.ROUND_BEGIN]


def plain_rounds(job: JobSpec, picks: list[list[int]]) -> Iterator[int]:
    """Train ``picks`` round by round as the job would, yielding each round's index once it
    (and its test, on evaluation rounds) is done."""
    training = job.conf.training
    torch.set_num_threads(job.conf.cluster.torch_threads)
    data = load_federated_data(job.conf.data, training.seed)
    x, y = data.train.x, data.train.y
    torch.manual_seed(training.seed)
    model = build_model(training.model, tuple(data.train.input_shape), data.train.num_classes)
    global_state = {k: v.clone() for k, v in model.state_dict().items()}
    loss_fn = torch.nn.CrossEntropyLoss()
    for round_index, clients in enumerate(picks, start=1):
        total = {k: torch.zeros_like(v) for k, v in global_state.items()}
        weight = 0
        for client in clients:
            model.load_state_dict(global_state)
            optimizer = torch.optim.SGD(model.parameters(), lr=training.learning_rate)
            own = torch.as_tensor(data.client_indices[client])
            gen = torch.Generator().manual_seed(client_seed(training.seed, round_index, client))
            for batch in own[batch_positions(len(own), training.local_steps, training.batch_size, gen)]:
                optimizer.zero_grad()
                loss_fn(model(x[batch]), y[batch]).backward()
                optimizer.step()
            for k, v in model.state_dict().items():
                total[k] += len(own) * v
            weight += len(own)
        global_state = {k: v / weight for k, v in total.items()}
        if round_index % training.eval_interval == 0 or round_index == len(picks):
            model.load_state_dict(global_state)
            with torch.no_grad():
                for start in range(0, len(data.test), training.test_bsz):
                    model(data.test.x[start:start + training.test_bsz]).argmax(1)
        yield round_index


def main() -> None:
    job, log_path = load_job(sys.argv[1]), Path(sys.argv[2])
    for round_index in plain_rounds(job, run_picks(log_path)):
        print(json.dumps({"round": round_index, "wall_time": time.time()}), flush=True)


if __name__ == "__main__":
    main()
