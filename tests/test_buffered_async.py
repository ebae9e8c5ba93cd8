"""FedBuff (Nguyen et al., AISTATS 2022): the staleness weighting and the buffer as pure code, and
asynchronous jobs run whole through ``run_to_end``."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from fedscale.cloud import commons
from fedscale.cloud.aggregation.aggregator import Aggregator, RoundOutcome
from fedscale.cloud.aggregation.fedbuff import BufferSchedule, admitted, staleness_weights
from fedscale.cloud.aggregation.server_algorithms import make_server_algorithm
from fedscale.cloud.aggregation.threat_model import ThreatModel
from fedscale.cloud.channels import job_api_pb2 as pb
from fedscale.cloud.config_parser import JobConf, JobSpec, load_job
from fedscale.deploy.submit import run_to_end
from tests.golden import normalise
from tests.jobs import (ROOT, check_documented, documented_events, events, pid_of, run_driver, start_driver,
                        wait_for_event, wait_for_run_dir, write_job)


def test_staleness_weights_are_fedbuffs_inverse_square_root():
    staleness = np.arange(7)
    assert np.array_equal(staleness_weights(staleness), 1 / np.sqrt(1 + staleness))
    assert staleness_weights(np.array([0]))[0] == 1.0 and np.all(np.diff(staleness_weights(staleness)) < 0)
    assert admitted(staleness, 3).tolist() == [True] * 4 + [False] * 3


def test_a_step_is_the_sample_weighted_mean_of_staleness_scaled_updates():
    """Δ = Σ n_i s(τ_i) Δ_i / Σ n_i through the aggregator's own aggregation (fed-avg, mean defence)."""
    conf = JobConf()
    rng = np.random.default_rng(3)
    updates, samples, staleness = rng.normal(size=(4, 5)), np.array([10.0, 20.0, 5.0, 40.0]), np.array([0, 1, 3, 2])
    outcome = RoundOutcome(results={c: (pb.ClientResult(num_samples=int(n)), torch.from_numpy(u))
                                    for c, (u, n) in enumerate(zip(updates, samples))})
    host = SimpleNamespace(threat=ThreatModel(conf.robustness, 1, 4, 4), server_algorithm=make_server_algorithm(conf))
    delta, _ = Aggregator._aggregate(host, 1, [0, 1, 2, 3], outcome, torch.from_numpy(samples),
                                     torch.from_numpy(staleness_weights(staleness)))
    expected = (samples * staleness_weights(staleness)) @ updates / samples.sum()
    np.testing.assert_allclose(delta.numpy(), expected, rtol=1e-12)


def run_schedule(durations: dict[int, float], concurrency: int, buffer: int, max_staleness: int,
                 steps: int) -> tuple[list[list[tuple[int, int, float]]], list[int], list[tuple[int, float, float]]]:
    """Drive a BufferSchedule as the aggregator does, each free slot going to the lowest-numbered
    available client: per step its (client, staleness, finish) updates, the discarded clients, and
    every training's (client, start, finish)."""
    schedule, now = BufferSchedule(concurrency, buffer, max_staleness), 0.0
    closed, discarded, trainings = [], [], []
    while len(closed) < steps:
        busy = set(schedule.busy().tolist())
        for client in [c for c in sorted(durations) if c not in busy][:schedule.free_slots]:
            schedule.start(client, now, (0.0, durations[client], 0.0), True)
        launch = schedule.finish()
        now = launch.finish
        trainings.append((launch.client, launch.start, launch.finish))
        if schedule.fresh(launch):
            schedule.add(launch)
        else:
            discarded.append(launch.client)
        if schedule.full:
            closed.append([(entry.client, tau, entry.finish) for entry, tau in schedule.close_step()])
    return closed, discarded, trainings


def test_buffer_by_hand():
    """Two slots, a buffer of two, no staleness allowed: a (1 s) and c (1 s) fill step 1 at t=2 while
    b (3 s), started from version 0, is discarded at t=3 (ahead of a's second training, which
    finishes then too but started later)."""
    closed, discarded, _ = run_schedule({0: 1.0, 1: 3.0, 2: 1.0}, concurrency=2, buffer=2, max_staleness=0, steps=2)
    assert closed[0] == [(0, 0, 1.0), (2, 0, 2.0)]
    assert discarded[0] == 1 and closed[1][0] == (0, 0, 3.0)


def test_buffer_invariants():
    rng = np.random.default_rng(7)
    durations = dict(enumerate(rng.uniform(1, 10, size=30).tolist()))
    closed, discarded, trainings = run_schedule(durations, concurrency=8, buffer=3, max_staleness=2, steps=40)
    assert all(len(step) == 3 for step in closed) and discarded
    assert all(tau <= 2 for step in closed for _, tau, _ in step)
    assert all(len({c for c, _, _ in step}) == 3 for step in closed)
    times = [t for step in closed for _, _, t in step]
    assert times == sorted(times)
    starts = np.array([[s, f] for _, s, f in trainings])
    assert max(np.sum((starts[:, 0] <= t) & (t < starts[:, 1])) for t in starts[:, 0]) <= 8
    assert_no_overlap(trainings)
    schedule = BufferSchedule(1, 1, 0)
    schedule.start(0, 0.0, (1.0, 1.0, 1.0), True)
    with pytest.raises(ValueError, match="no free slot"):
        schedule.start(1, 0.0, (1.0, 1.0, 1.0), True)
    with pytest.raises(ValueError, match="holds 0 of 1"):
        schedule.close_step()


def assert_no_overlap(trainings: list[tuple[int, float, float]]) -> None:
    """No client's trainings (client, start, finish) overlap."""
    by_client: dict[int, list[tuple[float, float]]] = {}
    for client, start, finish in trainings:
        by_client.setdefault(client, []).append((start, finish))
    for spans in by_client.values():
        spans.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans


def load_job_text(folder: Path, top: dict, **conf) -> JobSpec:
    """write_job's job in ``folder`` (made) with the top-level keys ``top`` added, loaded; an
    ``async_buffer`` in ``conf`` replaces its num_participants (the same key)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = write_job(folder, **conf)
    job = {**yaml.safe_load(path.read_text()), **top}
    if "async_buffer" in conf:
        job["job_conf"] = [item for item in job["job_conf"] if "num_participants" not in item]
    path.write_text(yaml.safe_dump(job))
    return load_job(str(path))


ASYNC = {"aggregator_entry": "aggregation/async_aggregator.py"}
STEPS = dict(rounds=5, async_buffer=3, max_concurrency=6, max_staleness=1, eval_interval=1)


def test_async_job(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(tmp_path / "state"))
    job = load_job_text(tmp_path / "a", ASYNC, executors=2, **STEPS)
    assert job.mode == commons.MODE_ASYNC and job.conf.training.num_participants == 3
    log = run_to_end(job)
    docs = documented_events()
    for event in log:
        check_documented(event, docs)
    assert log[-1]["status"] == commons.STATUS_COMPLETED and log[-1]["rounds_completed"] == 5
    begins = [e for e in log if e["tag"] == commons.ROUND_BEGIN]
    ends = [e for e in log if e["tag"] == commons.ROUND_END]
    assert [e["round"] for e in ends] == [1, 2, 3, 4, 5] and all(e["mode"] == "async" for e in begins + ends)
    assert all(e["aggregated"] == len(e["clients"]) == len(e["staleness"]) == 3 for e in ends)
    assert all(a["virtual_time"] < b["virtual_time"] for a, b in zip(ends, ends[1:]))
    assert all(0 <= tau <= 1 for e in ends for tau in e["staleness"])
    assert any(e["stragglers"] for e in ends), "max_staleness 1 discards some update"
    assert [b["virtual_time"] for b in begins] == [0.0] + [e["virtual_time"] for e in ends[:-1]]
    trainings = [(c, s, s + d) for b in begins
                 for c, s, d in zip(b["clients"], b["start_times"], b["predicted_durations"])]
    assert_no_overlap(trainings)
    for begin in begins:
        assert sorted(sum(begin["assignment"].values(), [])) == sorted(begin["clients"])
        assert all(begin["virtual_time"] <= s < begin["virtual_time"] + begin["planned_duration"]
                   for s in begin["start_times"])
    for end in ends:
        for client, tau in zip(end["clients"], end["staleness"]):
            started = max(b["round"] for b in begins if b["round"] <= end["round"] and client in b["clients"])
            assert tau == end["round"] - started
    accuracy = [e["accuracy"] for e in log if e["tag"] == commons.TEST_RESULT]
    assert len(accuracy) == 5 and accuracy[-1] > accuracy[0] + 0.2
    run_dir = Path(log[0]["run_dir"])
    for executor in ("executor-1", "executor-2"):
        for event in events(run_dir / f"{executor}.jsonl"):
            check_documented(event, docs)
    assert not (run_dir / "checkpoint").exists()

    again = run_to_end(load_job_text(tmp_path / "b", ASYNC, executors=2, **STEPS))
    assert same_log(log, tmp_path / "a") == same_log(again, tmp_path / "b")


def same_log(log: list[dict], folder: Path) -> list[str]:
    """The log as the golden tests compare it (the executors' joins, in the order they raced, left
    out), floats exact."""
    return [normalise(event, folder) for event in log if event["tag"] != commons.EXECUTOR_JOINED]


def test_a_lost_executors_clients_go_to_the_other(tmp_path):
    """An executor killed after step 2: its clients in flight, in every model version's task, are
    reassigned, it rejoins (restarted by the driver) and the job ends with every step full."""
    load_job_text(tmp_path, ASYNC, executors=2, rounds=6, async_buffer=3, max_concurrency=6, eval_interval=6,
                  local_steps=200, batch_size=32)
    driver = start_driver(tmp_path, "submit", str(tmp_path / "job.yml"))
    run_dir = wait_for_run_dir(tmp_path)
    wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_END, timeout=120, round=2)
    os.kill(pid_of(run_dir, "executor-2"), signal.SIGKILL)
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err
    log = events(run_dir / commons.AGGREGATOR_LOG)
    tags = [e["tag"] for e in log]
    assert commons.EXECUTOR_LOST in tags and commons.CLIENTS_REASSIGNED in tags
    assert [e["aggregated"] for e in log if e["tag"] == commons.ROUND_END] == [3] * 6
    assert log[-1]["status"] == commons.STATUS_COMPLETED


FEDBUFF_JOB = """\
# FedScale's benchmark/configs/fedbuff_femnist/conf.yml, on this machine with digits and an MLP
ps_ip: 127.0.0.1
ps_port: 0                                  # a free port (FedScale's default is 29500)
worker_ips:
    - 127.0.0.1:[2]
exp_path: {exp_path}
executor_entry: execution/executor.py
aggregator_entry: aggregation/async_aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: fedbuff_digits
    - num_participants: 4                   # the buffer of FedScale's async aggregator
    - data_set: digits
    - num_clients: 40
    - model: mlp
    - eval_interval: 2
    - rounds: 4
    - filter_less: 21
    - num_loaders: 2
    - local_steps: 5
    - learning_rate: 0.05
    - batch_size: 20
    - test_bsz: 20
    - max_concurrency: 8
    - max_staleness: 5
    - use_cuda: True
"""


def test_fedscale_fedbuff_job_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "conf.yml"
    path.write_text(FEDBUFF_JOB.format(exp_path=tmp_path))
    job = load_job(str(path))
    assert (job.mode, job.conf.asynchronous.max_concurrency, job.conf.asynchronous.max_staleness,
            job.conf.training.num_participants) == (commons.MODE_ASYNC, 8, 5, 4)
    log = run_to_end(job)
    ends = [e for e in log if e["tag"] == commons.ROUND_END]
    assert log[-1]["status"] == commons.STATUS_COMPLETED and len(ends) == 4
    assert all(e["aggregated"] == 4 and max(e["staleness"]) <= 5 for e in ends)


def test_an_async_job_is_not_resumed(tmp_path):
    job = load_job_text(tmp_path, ASYNC, executors=1, rounds=2, async_buffer=2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    job.save(run_dir)
    done = subprocess.run([sys.executable, "-m", "fedscale.cloud.aggregation.aggregator", "--run-dir", str(run_dir),
                           "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "asynchronous job writes no checkpoint" in done.stderr
    end = events(run_dir / commons.AGGREGATOR_LOG)[-1]
    assert end["status"] == commons.STATUS_FAILED
    assert end["reason"].startswith("--resume: an asynchronous job writes no checkpoint")


def test_resuming_an_async_run_is_a_one_line_refusal(tmp_path):
    job = load_job_text(tmp_path, ASYNC, executors=1, rounds=2, async_buffer=2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    job.save(run_dir)
    done = run_driver(tmp_path, "resume", str(run_dir))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {run_dir}: an asynchronous job cannot be resumed: it writes no "
                                   "checkpoint (its clients in flight cannot be saved)")
