"""Checkpoint and resume: a job killed mid-run and resumed logs exactly what an uninterrupted run logs.

The state each part hands to the checkpoint (selectors, server algorithms, the threat model)
goes through the real file format and must make a fresh copy continue exactly as the original;
whole jobs are killed with SIGKILL mid-round and resumed through the driver, and their round
events compared with the golden logs, uninterrupted runs of the same jobs.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmark.kill_resume import first_difference, round_events, run_killed_and_resumed
from fedscale.cloud import commons
from fedscale.cloud.aggregation.checkpoint import (CheckpointError, read_checkpoint, write_atomically,
                                                   write_checkpoint)
from fedscale.cloud.aggregation.server_algorithms import build_server_algorithm
from fedscale.cloud.aggregation.threat_model import ThreatModel
from fedscale.cloud.config.components import RobustnessConfig
from fedscale.cli import DEFAULT_JOB
from fedscale.selection.base import Feedback
from fedscale.selection.registry import build_selector
from tests.golden import HERE as GOLDEN
from tests.jobs import run_driver, run_dirs, write_job


def through_file(tmp_path, state):
    """``state`` written as a checkpoint and read back."""
    path = tmp_path / "checkpoint" / "checkpoint.npz"
    write_checkpoint(path, {"part": state})
    return read_checkpoint(path)["part"]


# ---------------------------------------------------------------- the format

def test_the_format_keeps_arrays_exactly_and_json_values_and_needs_no_pickle(tmp_path):
    state = {"model": np.linspace(-1, 1, 7, dtype=np.float32), "round": 3, "time": 0.1 + 0.2,
             "nested": {"ids": np.arange(4), "flags": np.array([True, False]), "rng": {"state": 2**100 + 1},
                        "none": None, "text": "a/b"}}
    back = through_file(tmp_path, state)
    assert back["round"] == 3 and back["time"] == 0.1 + 0.2 and back["nested"]["rng"] == {"state": 2**100 + 1}
    assert back["nested"]["none"] is None and back["nested"]["text"] == "a/b"
    for got, want in ((back["model"], state["model"]), (back["nested"]["ids"], state["nested"]["ids"]),
                      (back["nested"]["flags"], state["nested"]["flags"])):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    with np.load(tmp_path / "checkpoint" / "checkpoint.npz", allow_pickle=False) as data:
        assert "part/model" in data.files and data["part/model"].dtype == np.float32
    with pytest.raises(TypeError, match="object array"):
        write_checkpoint(tmp_path / "x.npz", {"bad": np.array([{}], dtype=object)})


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "checkpoint.npz"
    write_atomically(path, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(CheckpointError, match=f"cannot write the checkpoint {path}: No space left on device"):
        write_atomically(path, fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_a_missing_or_foreign_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"no checkpoint at {tmp_path / 'none.npz'}"):
        read_checkpoint(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", model=np.zeros(3))
    with pytest.raises(CheckpointError, match="cannot read the checkpoint .*other.npz"):
        read_checkpoint(tmp_path / "other.npz")


# ---------------------------------------------------------------- selectors

def windows(ids: np.ndarray, t: float) -> np.ndarray:
    rows = [np.random.default_rng([int(c), int(t)]).random((5, 3)) * [1.0, 0.65, 100.0] for c in ids]
    return np.array(rows).reshape(len(ids), 5, 3)


SELECTORS = {
    "random": {},
    "oort": {"pacer_step": 2, "blacklist_rounds": 3},
    "pyramidfl": {"pacer_step": 2},
    "bliss": {"bliss_min_train": 3, "amount_clients_predict_train_set": 10, "amount_clients_refresh_train_set": 10,
              "number_clients_to_predict_utility": 8, "number_clients_to_refresh_utility": 8, "pacer_step": 2,
              "g_model": "xgboost", "h_model": "linreg", "collect_data": True},
}


def new_selector(name: str, clients: int = 40):
    selector = build_selector(name, SELECTORS[name], 7)
    durations = np.linspace(50.0, 200.0, clients)
    selector.register_clients(np.arange(clients), np.arange(clients) + 5, durations,
                              window_source=windows if selector.needs.trace_windows else None)
    return selector


def play_round(selector, round_index: int) -> list[int]:
    online = np.arange(0, 40, 1 + round_index % 2)
    picks = selector.select_participants(6, 100.0 * round_index, online)
    if selector.needs.client_overrides:
        selector.client_overrides(np.array(picks), np.full(len(picks), 30.0), np.full(len(picks), 10.0), 5, 10)
    ids = np.array(picks, dtype=np.int64)
    selector.register_feedback(Feedback(
        round_index=round_index, client_ids=ids, rewards=(ids * 7 % 11).astype(float) + round_index,
        durations=60.0 + ids, success=ids % 5 != 0, gradient_norm=ids * 0.5 + 1))
    return picks


@pytest.mark.parametrize("name", SELECTORS)
def test_a_restored_selector_continues_as_the_original(tmp_path, name):
    original = new_selector(name)
    for round_index in range(1, 6):
        play_round(original, round_index)
    copy = new_selector(name)
    copy.restore(through_file(tmp_path, original.state()))
    for round_index in range(6, 12):
        assert play_round(copy, round_index) == play_round(original, round_index)
        assert copy.details() == original.details()
    if name == "bliss":
        assert original.g.fitted and copy.g.fitted
        assert all(np.array_equal(a, b, equal_nan=True) for a, b in
                   zip(original.training_data().values(), copy.training_data().values()))


# ---------------------------------------------------------------- server side

@pytest.mark.parametrize("name", ["fed-avg", "fed-avgm", "fed-adam", "fed-yogi", "fed-adagrad"])
def test_a_restored_server_algorithm_continues_as_the_original(tmp_path, name):
    deltas = torch.randn(8, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    original, model = build_server_algorithm(name, {}, 0.05), torch.zeros(5)
    for delta in deltas[:4]:
        model = original.step(model, delta)
    copy = build_server_algorithm(name, {}, 0.05)
    copy.load_state_dict(through_file(tmp_path, original.state_dict()))
    other = model.clone()
    for delta in deltas[4:]:
        model, other = original.step(model, delta), copy.step(other, delta)
    assert torch.equal(model, other)


def test_a_restored_threat_model_keeps_its_set_and_defence_draws(tmp_path):
    robustness = RobustnessConfig(byzantine_fraction=0.25, aggregator="bucketing(s=2)+mean")
    original = ThreatModel(robustness, 5, 8, 40)
    updates = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))
    original.aggregate(1, list(range(8)), updates, torch.ones(8))
    copy = ThreatModel(robustness, 5, 8, 40)
    copy.restore(through_file(tmp_path, original.state()))
    assert copy.byzantine == original.byzantine
    first, _ = original.aggregate(2, list(range(8)), updates, torch.ones(8))
    second, _ = copy.aggregate(2, list(range(8)), updates, torch.ones(8))
    assert torch.equal(first, second)


# ---------------------------------------------------------------- whole jobs

def golden_round_events(name: str) -> list[str]:
    lines = (GOLDEN / name / commons.AGGREGATOR_LOG).read_text().splitlines()
    return [json.dumps(json.loads(line), sort_keys=True) for line in lines
            if json.loads(line)["tag"] in (commons.ROUND_BEGIN, commons.ROUND_END, commons.TEST_RESULT)]


@pytest.mark.parametrize("name, kill_after", [("default", 12), ("oort", 4), ("bliss_adaptive", 3)])
def test_a_killed_job_resumes_where_its_checkpoint_is_and_logs_as_if_never_killed(tmp_path, monkeypatch, name,
                                                                                   kill_after):
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(tmp_path / "state"))
    job_file = DEFAULT_JOB if name == "default" else GOLDEN / f"{name}.yml"
    run_dir, after = run_killed_and_resumed(job_file, tmp_path, kill_after)
    assert after >= kill_after - 1  # the checkpoint of the round before may still be being written
    log = run_dir / commons.AGGREGATOR_LOG
    assert first_difference(golden_round_events(name), round_events(log)) is None
    begins = [e for e in map(json.loads, log.read_text().splitlines()) if e["tag"] == commons.JOB_BEGIN]
    assert [b.get("resumed_from") for b in begins] == [None, after]
    assert (run_dir / "checkpoint" / "discarded_events.jsonl").exists()
    end = json.loads(log.read_text().splitlines()[-1])
    assert end["tag"] == commons.JOB_END and end["status"] == commons.STATUS_COMPLETED
    again = run_driver(tmp_path, "resume", str(run_dir))
    assert again.returncode == 2
    assert again.stderr.strip() == (f"error: {run_dir}: the job ended at round {end['rounds_completed']} as planned; "
                                    f"there is nothing to resume")


def test_resume_refuses_a_folder_without_a_checkpoint_in_one_line(tmp_path):
    done = run_driver(tmp_path, "submit", str(write_job(tmp_path, executors=1, rounds=2, save_checkpoint=False)))
    assert done.returncode == 0, done.stderr
    run_dir = run_dirs(tmp_path)[-1]
    refused = run_driver(tmp_path, "submit", "--resume", str(run_dir))
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"error: no checkpoint at {run_dir / 'checkpoint' / 'checkpoint.npz'}")
    assert len(refused.stderr.strip().splitlines()) == 1
    assert run_driver(tmp_path, "resume", str(tmp_path)).stderr.startswith(f"error: {tmp_path}: not a run folder")
