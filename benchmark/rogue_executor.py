"""A rogue executor holding the job secret, against a real aggregator: what does the aggregator do?

Each attack runs in its own small job (digits, MLP, 4 rounds) with one honest executor and one
rogue. The rogue is built from the executor's own client code (``AggregatorConnection``): it
sends a valid Hello (or a crafted one) and answers tasks cooperatively (zero updates with the
true sample counts) except where its attack crafts the message. Per attack one line says what
the aggregator did (refused or dropped the rogue, failed a client, ...), how the job ended and
the aggregator's peak memory; a last line runs an honest job whose server step diverges.
Usage: python benchmark/rogue_executor.py [--attack NAME ...] [--logs DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedscale.cloud import commons  # noqa: E402
from fedscale.cloud.channels import job_api_pb2 as pb  # noqa: E402
from fedscale.cloud.channels.client import AggregatorConnection, AggregatorLost  # noqa: E402
from fedscale.cloud.channels.tensor_codec import headers  # noqa: E402
from fedscale.cloud.config_parser import load_job  # noqa: E402
from fedscale.cloud.logger.events import read_events  # noqa: E402
from fedscale.dataloaders.federated import load_federated_data  # noqa: E402
from fedscale.dataloaders.partition import contiguous_bounds  # noqa: E402
from fedscale.deploy.local import LocalLauncher, process_env  # noqa: E402
from fedscale.deploy.submit import make_run_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECRET = "rogue-executor-benchmark-secret"
HONEST = "executor-1"
JOB = {"job_name": "rogue", "data_set": "digits", "partition": "iid", "num_clients": 20, "model": "mlp",
       "rounds": 4, "num_participants": 8, "local_steps": 5, "batch_size": 10, "learning_rate": 0.05,
       "eval_interval": 2, "executor_timeout": 10.0, "heartbeat_interval": 0.5, "connection_timeout": 120}
HUGE_HEADER_BYTES = 1 << 30   # announced by the huge-header attack (the old cap allowed 16 GiB)


@dataclasses.dataclass
class Attack:
    """How a rogue misbehaves: ``hello`` rewrites its Hello, ``train`` answers a TRAIN task
    (returns the batch and its arrays), ``test`` answers a TEST task; None: cooperate.
    ``joins_first``: connect before the honest executor (so its Hello would fix the model)."""

    hello: Callable[[pb.Hello], None] | None = None
    train: Callable[[pb.Task, "Rogue"], tuple[pb.TaskResults, list]] | None = None
    test: Callable[[pb.Task, "Rogue"], pb.TestResult] | None = None
    joins_first: bool = False


class Rogue:
    """An executor session speaking the real protocol with crafted content, on its own thread."""

    def __init__(self, name: str, address: str, hello: pb.Hello, attack: Attack) -> None:
        self.hello = hello
        self.attack = attack
        self.ended = ""
        self.conn = AggregatorConnection(address, SECRET, hello)
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                task, tensors = self.conn.next_task()
                if task.kind == pb.SHUTDOWN:
                    self.ended = "shut down"
                    return
                if task.kind == pb.TRAIN:
                    answer = self.attack.train or cooperative_train
                    batch, arrays = answer(task, self, tensors["model"])
                    batch.tensors.extend(headers(arrays))
                    self.conn.send(pb.ExecutorMessage(results=batch), arrays)
                elif task.kind == pb.TEST:
                    answer = self.attack.test or cooperative_test
                    self.conn.send(pb.ExecutorMessage(test=answer(task, self)))
        except AggregatorLost as err:
            self.ended = str(err)

    def close(self) -> None:
        self.conn.close()
        self.thread.join(timeout=5)


def honest_result(task: pb.Task, rogue: Rogue, index: int) -> pb.ClientResult:
    """What an honest executor would report for the task's ``index``-th client (no training)."""
    client = task.client_ids[index]
    steps = task.client_local_steps[index] if task.client_local_steps else task.train.local_steps
    return pb.ClientResult(client_id=client, num_samples=rogue.hello.client_sample_counts[client], train_loss=1.0,
                           local_steps=steps, keep_fraction=1.0, initial_loss=1.0)


def cooperative_train(task: pb.Task, rogue: Rogue, model: np.ndarray,
                      tamper: Callable[[pb.ClientResult, np.ndarray], None] | None = None):
    """Zero updates with true counts; ``tamper`` may alter the first client's result and row."""
    results = [honest_result(task, rogue, i) for i in range(len(task.client_ids))]
    updates = np.zeros((len(results), model.size), dtype=model.dtype)
    if tamper is not None:
        tamper(results[0], updates[0])
    return pb.TaskResults(task_id=task.task_id, results=results, final=True), [("updates", updates)]


def cooperative_test(task: pb.Task, rogue: Rogue) -> pb.TestResult:
    bounds = contiguous_bounds(rogue.hello.test_samples, task.shard_count)
    samples = int(bounds[task.shard_index + 1] - bounds[task.shard_index])
    return pb.TestResult(task_id=task.task_id, loss_sum=2.3 * samples, correct=samples // 10, num_samples=samples)


def announce_only(shape: list[int]) -> Callable:
    """Results whose header announces an update batch of ``shape`` (float32); no bytes follow."""
    def train(task: pb.Task, rogue: Rogue, model: np.ndarray):
        batch = pb.TaskResults(task_id=task.task_id, results=[honest_result(task, rogue, 0)], final=False)
        batch.tensors.add(name="updates", dtype="float32", shape=shape)
        return batch, []
    return train


def foreign_clients(task: pb.Task, rogue: Rogue, model: np.ndarray):
    """Results for every client this rogue was not given (the honest executor's among them)."""
    own = set(task.client_ids)
    others = [c for c in range(len(rogue.hello.client_sample_counts)) if c not in own]
    results = [pb.ClientResult(client_id=c, num_samples=rogue.hello.client_sample_counts[c], local_steps=1)
               for c in others]
    updates = np.zeros((len(results), model.size), dtype=model.dtype)
    return pb.TaskResults(task_id=task.task_id, results=results, final=False), [("updates", updates)]


def _inflate(result: pb.ClientResult, row: np.ndarray) -> None:
    result.num_samples = 10 ** 12


def _poison(result: pb.ClientResult, row: np.ndarray) -> None:
    row[:] = np.nan


def _impossible_accuracy(task: pb.Task, rogue: Rogue) -> pb.TestResult:
    result = cooperative_test(task, rogue)
    result.correct = 2 * result.num_samples
    return result


def _set(field: str, value: Any) -> Callable[[pb.Hello], None]:
    def rewrite(hello: pb.Hello) -> None:
        del getattr(hello, field)[:]
        getattr(hello, field).extend(value)
    return rewrite


ATTACKS: dict[str, Attack] = {
    "huge-header": Attack(train=announce_only([1, HUGE_HEADER_BYTES // 4])),
    "overflowing-shape": Attack(train=announce_only([2 ** 62, 3])),
    "foreign-clients": Attack(train=foreign_clients),
    "inflated-samples": Attack(train=lambda task, rogue, model: cooperative_train(task, rogue, model, _inflate)),
    "nan-update": Attack(train=lambda task, rogue, model: cooperative_train(task, rogue, model, _poison)),
    "impossible-test": Attack(test=_impossible_accuracy),
    "mismatched-hello": Attack(hello=_set("input_shape", [8, 8])),
    "huge-input-shape": Attack(hello=_set("input_shape", [1 << 20, 1 << 20]), joins_first=True),
}


def write_job(folder: Path, executors: int, **conf: Any) -> Path:
    devices = [{"id": i + 1, "computation": 20.0 + i, "communication": 10_000.0} for i in range(50)]
    (folder / "fleet.json").write_text(json.dumps(devices))
    settings = {**JOB, "clients_file": str(folder / "fleet.json"), **conf}
    job = {"ps_ip": "127.0.0.1", "ps_port": 0, "worker_ips": [f"127.0.0.1:[{executors}]"], "exp_path": str(folder),
           "job_conf": [{k: v} for k, v in settings.items()]}
    path = folder / "job.yml"
    path.write_text(yaml.safe_dump(job))
    return path


def wait_for(log: Path, *tags: str, timeout: float = 120, **match: Any) -> dict[str, Any]:
    """The first event of ``log`` with one of ``tags`` and the fields in ``match``, once it is written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists():
            for event in read_events(log):
                if event["tag"] in tags and all(event.get(k) == v for k, v in match.items()):
                    return event
        time.sleep(0.05)
    raise TimeoutError(f"no {'/'.join(tags)} {match} in {log} within {timeout} s")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MiB; NaN once it has exited."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:
        return float("nan")
    return next((int(l.split()[1]) / 1024 for l in lines if l.startswith("VmHWM:")), float("nan"))


@dataclasses.dataclass
class Outcome:
    events: list[dict[str, Any]]
    rss_start_mb: float
    rss_after_round_1_mb: float
    exit_code: int


def run_with_rogues(folder: Path, attacks: dict[str, Attack], **conf: Any) -> Outcome:
    """Run a job with the honest executor and one rogue per attack (named ``rogue-<attack>``)."""
    job, run_dir = make_run_dir(load_job(str(write_job(folder, 1 + len(attacks), **conf))))
    log = run_dir / commons.AGGREGATOR_LOG
    launcher = LocalLauncher(job, run_dir, process_env(SECRET))
    launcher.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    rogues: list[Rogue] = []
    try:
        aggregator = launcher.start_aggregator()
        address = wait_for(log, commons.JOB_BEGIN)["address"]
        rss_start = peak_rss_mb(aggregator.pid)
        data = load_federated_data(job.conf.data, job.conf.training.seed)

        def join(name: str, attack: Attack) -> None:
            hello = pb.Hello(executor_id=f"rogue-{name}", client_sample_counts=data.client_sample_counts.tolist(),
                             test_samples=len(data.test), input_shape=list(data.train.input_shape),
                             num_classes=data.train.num_classes)
            if attack.hello is not None:
                attack.hello(hello)
            rogues.append(Rogue(hello.executor_id, address, hello, attack))
            wait_for(log, commons.EXECUTOR_JOINED, executor=hello.executor_id)

        for name, attack in attacks.items():
            if attack.joins_first:
                join(name, attack)
        launcher.start_executor(HONEST, address)
        wait_for(log, commons.EXECUTOR_JOINED, executor=HONEST)
        for name, attack in attacks.items():
            if not attack.joins_first:
                join(name, attack)
        wait_for(log, commons.ROUND_END, commons.JOB_END)
        rss_round_1 = peak_rss_mb(aggregator.pid)
        code = aggregator.wait(timeout=300)
        launcher.wait_all(timeout=10)
        return Outcome(list(read_events(log)), rss_start, rss_round_1, code)
    finally:
        for rogue in rogues:
            rogue.close()
        launcher.terminate(grace=1)


def what_happened(name: str, outcome: Outcome) -> str:
    """One line: what the aggregator did with rogue ``name``'s attack."""
    rogue = f"rogue-{name}"
    lost = [e for e in outcome.events if e["tag"] == commons.EXECUTOR_LOST and e["executor"] == rogue]
    failed = [e for e in outcome.events if e["tag"] == commons.CLIENT_FAILED and e["executor"] == rogue]
    if lost:
        did = f"dropped the rogue: {lost[0]['reason']}"
    elif failed:
        did = f"failed client {failed[0]['client']} (round {failed[0]['round']}): {failed[0]['reason']}"
    else:
        did = "accepted everything the rogue sent"
    end = outcome.events[-1]
    honest, aggregated = honest_clients(outcome.events)
    return (f"{name:18s} {did} | job {end['status']} after {end.get('rounds_completed')} rounds, honest clients "
            f"aggregated {aggregated}/{honest}, aggregator peak RSS {outcome.rss_after_round_1_mb:.0f} MiB "
            f"(at JOB_BEGIN {outcome.rss_start_mb:.0f})")


def honest_clients(events: list[dict[str, Any]]) -> tuple[int, int]:
    """How many clients the honest executor was given over the job, and how many of them were aggregated."""
    given = {e["round"]: set(e["assignment"].get(HONEST, [])) for e in events if e["tag"] == commons.ROUND_BEGIN}
    aggregated = sum(len(given[e["round"]] & set(e["clients"])) for e in events if e["tag"] == commons.ROUND_END)
    return sum(map(len, given.values())), aggregated


def diverging_job(folder: Path) -> Outcome:
    """An honest job (no rogue) whose server step overflows: fed-adam with a huge server rate."""
    return run_with_rogues(folder, {}, rounds=2, gradient_policy="fed-adam", yogi_eta=1e39)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attack", action="append", choices=sorted(ATTACKS), help="default: every attack")
    parser.add_argument("--logs", help="keep the jobs' run folders here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.logs or scratch)
        for name in args.attack or ATTACKS:
            folder = root / name
            folder.mkdir(parents=True, exist_ok=True)
            print(what_happened(name, run_with_rogues(folder, {name: ATTACKS[name]})), flush=True)
        folder = root / "diverging"
        folder.mkdir(parents=True, exist_ok=True)
        outcome = diverging_job(folder)
        end = outcome.events[-1]
        print(f"{'honest-diverging':18s} job {end['status']} (aggregator exit {outcome.exit_code}): {end['reason']}")


if __name__ == "__main__":
    main()
