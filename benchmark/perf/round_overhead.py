"""Framework overhead per round: the default job against a plain PyTorch loop, in one run.

Runs the default job (and the same job with a single executor), reads the clients each round
trained from its event log, then trains exactly those clients (same data, same batches, same
steps) one after another in this process with a plain PyTorch loop and FedAvg. Prints the
job's wall time per round divided by the loop's time per round. Round 1 (process warm-up) is
left out of both. Usage: python benchmark/perf/round_overhead.py [job.yml]
"""
from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fedscale.cli import DEFAULT_JOB  # noqa: E402
from fedscale.cloud import commons  # noqa: E402
from fedscale.cloud.config_parser import JobSpec, load_job  # noqa: E402
from fedscale.cloud.execution.torch_client import batch_positions, client_seed  # noqa: E402
from fedscale.dataloaders.federated import load_federated_data  # noqa: E402
from fedscale.dataloaders.models import build_model  # noqa: E402
from fedscale.deploy.submit import run_to_end  # noqa: E402


def run_job(job: JobSpec, exp_path: str) -> tuple[list[list[int]], float]:
    """Run ``job``; return each round's clients and the mean wall seconds of rounds 2..R."""
    try:
        log = run_to_end(dataclasses.replace(job, exp_path=exp_path))
    except RuntimeError as err:
        raise SystemExit(str(err)) from None
    picks = [e["clients"] for e in log if e["tag"] == commons.ROUND_BEGIN]
    walls = [e["wall_seconds"] for e in log if e["tag"] == commons.ROUND_END]
    return picks, float(np.mean(walls[1:]))


def plain_loop(job: JobSpec, picks: list[list[int]]) -> float:
    """Mean seconds per round (rounds 2..R) of training ``picks`` in a plain loop with FedAvg."""
    training = job.conf.training
    torch.set_num_threads(job.conf.cluster.torch_threads)
    data = load_federated_data(job.conf.data, training.seed)
    x, y = data.train.x, data.train.y
    torch.manual_seed(training.seed)
    model = build_model(training.model, tuple(data.train.input_shape), data.train.num_classes)
    global_state = {k: v.clone() for k, v in model.state_dict().items()}
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for round_index, clients in enumerate(picks, start=1):
        started = time.perf_counter()
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
        times.append(time.perf_counter() - started)
    return float(np.mean(times[1:]))


def main() -> None:
    job = load_job(sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT_JOB))
    spec = job.to_dict()
    single = JobSpec.from_dict(dict(spec, workers=[dict(spec["workers"][0], procs=1)],
                                    conf=dict(spec["conf"], num_executors=1)))
    with tempfile.TemporaryDirectory() as tmp:
        picks, job_round = run_job(job, tmp)
        _, single_round = run_job(single, tmp)
    loop_round = plain_loop(job, picks)
    conf = job.conf
    print(f"job {conf.identity.job_name}: {len(picks)} rounds x {conf.training.num_participants} clients x "
          f"{conf.training.local_steps} steps of {conf.training.batch_size}, model {conf.training.model}")
    print(f"plain loop, one process:         {loop_round * 1e3:8.2f} ms/round")
    print(f"job, {job.num_executors} executor(s):              {job_round * 1e3:8.2f} ms/round  "
          f"ratio {job_round / loop_round:.2f}")
    print(f"job, 1 executor:                 {single_round * 1e3:8.2f} ms/round  "
          f"ratio {single_round / loop_round:.2f}")


if __name__ == "__main__":
    main()
