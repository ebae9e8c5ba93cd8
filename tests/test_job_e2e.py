"""Whole jobs with real processes and real gRPC on 127.0.0.1, driven through the CLI."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fedscale.cloud import commons
from fedscale.cloud.aggregation.checkpoint import checkpoint_path, read_checkpoint
from fedscale.cloud.config_parser import load_job
from fedscale.deploy.local import LocalLauncher, process_env
from fedscale.deploy.submit import run_to_end
from fedscale.dataloaders.femnist import write_femnist_fixture
from tests.jobs import (ROOT, check_documented, documented_events, driver_env, events, job_pids, pid_of, run_dirs,
                        run_driver, start_driver, wait_for_event, wait_for_run_dir, wait_until_gone, write_job)

COMMON_KEYS = {"tag", "job", "round", "virtual_time", "wall_time"}
EVENT_KEYS = {
    commons.JOB_BEGIN: {"address", "num_executors", "config"},
    commons.ROUND_BEGIN: {"clients", "assignment", "predicted_durations"},
    commons.ROUND_END: {"aggregated", "clients", "failures", "stragglers", "train_loss", "round_duration",
                        "wall_seconds"},
    commons.TEST_RESULT: {"accuracy", "loss", "num_samples"},
    commons.CLIENT_FAILED: {"client", "executor", "reason"},
    commons.JOB_END: {"status", "reason"},
}


def check_log_lines(path):
    """The log's events, each with the keys its tag requires and nothing docs/events.md does not
    document (with the documented types)."""
    log = events(path)
    docs = documented_events()
    for event in log:
        assert COMMON_KEYS <= set(event), event
        assert EVENT_KEYS.get(event["tag"], set()) <= set(event), event
        check_documented(event, docs)
    return log


def test_small_job_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # W&B writes its run into the run folder: the key must not be there
    job = write_job(tmp_path, wandb_token="tok-3141-never-written")
    done = run_driver(tmp_path, "submit", str(job))
    assert done.returncode == 0, done.stderr
    run_dir = run_dirs(tmp_path)[-1]
    leaked = [p for p in run_dir.rglob("*") if p.is_file() and b"tok-3141-never-written" in p.read_bytes()]
    assert leaked == [] and "tok-3141" not in done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(run_dir)
    log = check_log_lines(run_dir / commons.AGGREGATOR_LOG)
    tags = [e["tag"] for e in log]
    assert tags[0] == commons.JOB_BEGIN and tags[-1] == commons.JOB_END
    assert tags.count(commons.ROUND_BEGIN) == tags.count(commons.ROUND_END) == 4
    assert [e["round"] for e in log if e["tag"] == commons.TEST_RESULT] == [2, 4]
    ends = [e for e in log if e["tag"] == commons.ROUND_END]
    assert all(e["aggregated"] == 6 and not e["failures"] for e in ends)
    assert all(a["virtual_time"] < b["virtual_time"] for a, b in zip(ends, ends[1:]))
    begin = next(e for e in log if e["tag"] == commons.ROUND_BEGIN)
    assert sorted(sum(begin["assignment"].values(), [])) == begin["clients"]
    assert set(begin["assignment"]) == {"executor-1", "executor-2"}
    assert log[-1]["status"] == commons.STATUS_COMPLETED and log[-1]["rounds_completed"] == 4
    assert log[-1]["test"]["accuracy"] > 0.5
    for executor in ("executor-1", "executor-2"):
        check_log_lines(run_dir / f"{executor}.jsonl")
    for plot in ("progress.png", "clients.png", "round_durations.png"):
        assert (run_dir / plot).read_bytes().startswith(b"\x89PNG")
    state = read_checkpoint(checkpoint_path(run_dir))
    assert state["round"] == 4 and state["test"] == log[-1]["test"]
    assert np.load(checkpoint_path(run_dir), allow_pickle=False)["model"].ndim == 1
    assert not job_pids(run_dir)


def test_same_seed_same_choices_and_metrics(tmp_path):
    """Same file and seed: same clients and metrics; the executor count changes nothing but sharding."""
    def run(folder, executors, seed=233):
        folder.mkdir()
        done = run_driver(folder, "submit", str(write_job(folder, executors=executors, seed=seed)))
        assert done.returncode == 0, done.stderr
        log = events(run_dirs(folder)[-1] / commons.AGGREGATOR_LOG)
        picks = [e["clients"] for e in log if e["tag"] == commons.ROUND_BEGIN]
        losses = [e["train_loss"] for e in log if e["tag"] == commons.ROUND_END]
        tests = [(e["accuracy"], e["loss"]) for e in log if e["tag"] == commons.TEST_RESULT]
        return picks, losses, tests

    first, again, one_executor = run(tmp_path / "a", 2), run(tmp_path / "b", 2), run(tmp_path / "c", 1)
    assert first == again
    assert one_executor[:2] == first[:2]
    assert [a for a, _ in one_executor[2]] == [a for a, _ in first[2]]
    np.testing.assert_allclose([l for _, l in one_executor[2]], [l for _, l in first[2]], rtol=1e-6)
    assert run(tmp_path / "d", 2, seed=7)[0] != first[0]


@pytest.mark.parametrize("mode", ["random", "oort", "pyramidfl"])
def test_each_sample_mode_runs_on_the_shipped_fleet(tmp_path, mode):
    job = write_job(tmp_path, executors=1, sample_mode=mode, clients_file="", rounds=8, num_participants=4,
                    eval_interval=4)
    done = run_driver(tmp_path, "submit", str(job))
    assert done.returncode == 0, done.stderr
    log = check_log_lines(run_dirs(tmp_path)[-1] / commons.AGGREGATOR_LOG)
    begins = [e for e in log if e["tag"] == commons.ROUND_BEGIN]
    ends = [e for e in log if e["tag"] == commons.ROUND_END]
    assert len(begins) == len(ends) == 8 and log[-1]["status"] == commons.STATUS_COMPLETED
    assert all(0 < len(b["clients"]) <= 4 and b["num_online"] >= len(b["clients"]) for b in begins)
    assert all(e["round_duration"] > 0 for e in ends)
    assert [e["virtual_time"] for e in ends] == sorted(e["virtual_time"] for e in ends)
    if mode != "random":
        assert {"epsilon", "preferred_duration"} <= set(begins[-1]["selector"])
    if mode == "pyramidfl":
        assert any(min(b["keep_fraction"]) < 1 and max(b["local_steps"]) > 5 for b in begins)


def test_pyramidfl_dropout_mode_reaches_the_executors(tmp_path):
    """Both modes plan round 1 alike (the upload is charged at 1 - P either way), but executors
    drop different parts of the update, so the models diverge; layer_random reruns are identical."""
    def run(folder, mode):
        folder.mkdir()
        job = write_job(folder, executors=2, sample_mode="pyramidfl", rounds=3, num_participants=4,
                        eval_interval=3, pyramidfl_dropout=mode)
        done = run_driver(folder, "submit", str(job))
        assert done.returncode == 0, done.stderr
        log = check_log_lines(run_dirs(folder)[-1] / commons.AGGREGATOR_LOG)
        return ([{k: e[k] for k in ("clients", "local_steps", "keep_fraction")} for e in log
                 if e["tag"] == commons.ROUND_BEGIN],
                [(e.get("train_loss"), e.get("loss")) for e in log
                 if e["tag"] in (commons.ROUND_END, commons.TEST_RESULT)])

    topk, layer, again = (run(tmp_path / name, mode) for name, mode in
                          (("topk", "topk"), ("layer", "layer_random"), ("again", "layer_random")))
    assert topk[0][0] == layer[0][0] and min(layer[0][0]["keep_fraction"]) < 1
    assert topk[1] != layer[1]
    assert layer == again


def test_bliss_with_adaptive_training_and_both_paths_log_the_same_shape(tmp_path):
    def run(folder, **conf):
        folder.mkdir()
        job = write_job(folder, executors=2, clients_file="", rounds=6, num_participants=4, eval_interval=3, **conf)
        done = run_driver(folder, "submit", str(job))
        assert done.returncode == 0, done.stderr
        return check_log_lines(run_dirs(folder)[-1] / commons.AGGREGATOR_LOG)

    adaptive = run(tmp_path / "adaptive", sample_mode="bliss", adaptive_training=True, t_budget=200.0,
                   bliss_min_train=5, amount_clients_predict_train_set=20, amount_clients_refresh_train_set=20,
                   collect_data=True)
    rows = np.load(run_dirs(tmp_path / "adaptive")[-1] / "selector_training_data.npz")
    assert len(rows["target"]) > 0 and len(rows["g_features"]) == len(rows["target"])
    fixed = run(tmp_path / "fixed", sample_mode="bliss", bliss_min_train=5, amount_clients_predict_train_set=20,
                amount_clients_refresh_train_set=20)
    for tag in (commons.ROUND_BEGIN, commons.ROUND_END, commons.TEST_RESULT):
        keys = [set(e) for log in (adaptive, fixed) for e in log if e["tag"] == tag]
        assert all(k == keys[0] for k in keys), tag
    ends = [e for e in adaptive if e["tag"] == commons.ROUND_END]
    assert adaptive[-1]["status"] == commons.STATUS_COMPLETED and len(ends) == 6
    assert all(0 < e["aggregated"] <= 4 for e in ends)
    assert all(e["round_duration"] <= 200.0 * 1.5 for e in ends)
    begins = [e for e in adaptive if e["tag"] == commons.ROUND_BEGIN]
    assert begins[-1]["selector"]["t_budget"] == 200.0 and "g_fitted" in begins[-1]["selector"]


def test_byzantine_clients_attack_and_a_robust_rule_defends(tmp_path):
    def run(folder, **conf):
        folder.mkdir()
        job = write_job(folder, executors=1, num_clients=20, num_participants=10, rounds=6, eval_interval=3,
                        byzantine_fraction=0.2, **conf)
        done = run_driver(folder, "submit", str(job))
        assert done.returncode == 0, done.stderr
        return check_log_lines(run_dirs(folder)[-1] / commons.AGGREGATOR_LOG)

    attacked = run(tmp_path / "mean", attack="empire(epsilon=50)")
    defended = run(tmp_path / "robust", attack="empire(epsilon=50)", aggregator="nnm+trimmed_mean", f=4)
    for log in (attacked, defended):
        ends = [e for e in log if e["tag"] == commons.ROUND_END]
        assert sum(e["byzantine_aggregated"] for e in ends) > 0
        assert all(e["byzantine_aggregated"] == len(e["byzantine"]) for e in ends)
    assert attacked[-1]["test"]["accuracy"] < 0.5 < defended[-1]["test"]["accuracy"]
    krum = run(tmp_path / "krum", attack="empire(epsilon=50)", aggregator="multi_krum", f=2)
    ends = [e for e in krum if e["tag"] == commons.ROUND_END]
    assert all(len(e["defence"]["kept"]) == e["aggregated"] - 2 and set(e["defence"]["kept"]) <= set(e["clients"])
               for e in ends)
    # the forged rows are identical and far away: Multi-Krum drops f of them and keeps the rest
    assert [e["defence"]["byzantine_kept"] for e in ends] == [max(0, len(e["byzantine"]) - 2) for e in ends]
    assert all(e["defence"] == {} for e in attacked if e["tag"] == commons.ROUND_END)


def test_label_flipping_clients_train_on_flipped_labels_and_drag_the_mean_down(tmp_path):
    """40% Byzantine clients send their honest updates on labels y -> 9 - y; the aggregator keeps
    their rows, so the drop against the attack-free run comes from the executors' training."""
    def run(folder, **conf):
        folder.mkdir()
        job = write_job(folder, executors=1, num_clients=20, num_participants=10, rounds=4, eval_interval=4,
                        **conf)
        done = run_driver(folder, "submit", str(job))
        assert done.returncode == 0, done.stderr
        return check_log_lines(run_dirs(folder)[-1] / commons.AGGREGATOR_LOG)

    clean = run(tmp_path / "clean")
    flipped = run(tmp_path / "flipped", attack="label_flip", byzantine_fraction=0.4)
    ends = [e for e in flipped if e["tag"] == commons.ROUND_END]
    assert sum(e["byzantine_aggregated"] for e in ends) > 0
    assert flipped[-1]["test"]["accuracy"] < clean[-1]["test"]["accuracy"] - 0.15


@pytest.mark.parametrize("conf", [{"gradient_policy": "fed-prox"}, {"gradient_policy": "q-fedavg"}])
def test_fed_prox_and_q_fedavg_learn(tmp_path, conf):
    done = run_driver(tmp_path, "submit", str(write_job(tmp_path, executors=1, rounds=8, eval_interval=8, **conf)))
    assert done.returncode == 0, done.stderr
    log = check_log_lines(run_dirs(tmp_path)[-1] / commons.AGGREGATOR_LOG)
    assert log[0]["config"]["gradient_policy"] == conf["gradient_policy"]
    assert log[-1]["status"] == commons.STATUS_COMPLETED and log[-1]["test"]["accuracy"] > 0.5


def test_run_to_end_returns_the_events_or_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(tmp_path / "state"))
    log = run_to_end(load_job(str(write_job(tmp_path, executors=1, rounds=2))))
    assert [e["tag"] for e in log][-1] == commons.JOB_END and log[-1]["status"] == commons.STATUS_COMPLETED
    failing = load_job(str(write_job(tmp_path, executors=1, name="bad.yml", gradient_policy="fed-adam",
                                     yogi_eta=1e39)))
    with pytest.raises(RuntimeError, match=r"the job diverged: round 1: .*\(logs: "):
        run_to_end(failing)


def test_default_job_is_the_quickstart_file():
    from fedscale.cli import DEFAULT_JOB
    from fedscale.cloud.config_parser import load_job
    shipped, default = load_job(str(ROOT / "benchmark/configs/quickstart.yml")), load_job(str(DEFAULT_JOB))
    assert dict(shipped.to_dict(), source="") == dict(default.to_dict(), source="")


def test_femnist_layout_job(tmp_path):
    data_dir = write_femnist_fixture(str(tmp_path / "femnist"), num_clients=12, samples_per_client=8, seed=1)
    job = write_job(tmp_path, executors=1, data_set="femnist", data_dir=data_dir, model="cnn",
                    num_participants=4, rounds=2)
    done = run_driver(tmp_path, "submit", str(job))
    assert done.returncode == 0, done.stderr
    log = events(run_dirs(tmp_path)[-1] / commons.AGGREGATOR_LOG)
    assert next(e for e in log if e["tag"] == commons.ROUND_BEGIN)["num_clients"] == 12
    assert log[-1]["status"] == commons.STATUS_COMPLETED


SLOW = dict(local_steps=300, batch_size=32, rounds=40, num_participants=10, eval_interval=100)


def test_ctrl_c_ends_every_process(tmp_path):
    driver = start_driver(tmp_path, "submit", str(write_job(tmp_path, **SLOW)))
    run_dir = wait_for_run_dir(tmp_path)
    wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, round=2)
    titles = sorted(" ".join(command.split()[:2]) for command in job_pids(run_dir).values())
    assert titles == ["fedscale aggregator", "fedscale executor-1", "fedscale executor-2", "fedscale template"]
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=10) == 130
    wait_until_gone(run_dir, timeout=5)
    assert events(run_dir / commons.AGGREGATOR_LOG)[-1]["status"] == commons.STATUS_STOPPED
    assert "stopped" in driver.stderr.read()


def test_a_second_ctrl_c_while_stopping_still_ends_cleanly_with_130(tmp_path):
    driver = start_driver(tmp_path, "submit", str(write_job(tmp_path, **SLOW)))
    run_dir = wait_for_run_dir(tmp_path)
    wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, round=2)
    driver.send_signal(signal.SIGINT)
    time.sleep(0.05)
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=10) == 130
    wait_until_gone(run_dir, timeout=5)
    stderr = driver.stderr.read()
    assert "Traceback" not in stderr and "stopped" in stderr, stderr


def test_stop_command_ends_the_job(tmp_path):
    driver = start_driver(tmp_path, "submit", str(write_job(tmp_path, **SLOW)))
    run_dir = wait_for_run_dir(tmp_path)
    wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, round=2)
    assert "small" in run_driver(tmp_path, "status").stdout
    stopped = run_driver(tmp_path, "stop", "small", timeout=30)
    assert stopped.returncode == 0, stopped.stderr
    assert driver.wait(timeout=10) == 130
    wait_until_gone(run_dir, timeout=5)
    assert run_driver(tmp_path, "stop", "small").returncode == 1
    assert "no running jobs" in run_driver(tmp_path, "status").stdout


def signal_executor_in_round_2(tmp_path, executor, sig, rounds=None, **conf):
    """Run a slow job of ``rounds`` rounds with ``conf`` (the default job if None), send ``sig`` to
    ``executor`` once round 2 starts; the job must still complete. Returns its aggregator log,
    how long after the signal the executor was declared lost, and the driver's output."""
    job_file = [] if rounds is None else [str(write_job(tmp_path, **dict(SLOW, rounds=rounds, **conf)))]
    job_name = "quickstart" if rounds is None else "small"
    driver = start_driver(tmp_path, "submit", *job_file)
    run_dir = wait_for_run_dir(tmp_path, job_name)
    log_path = run_dir / commons.AGGREGATOR_LOG
    wait_for_event(log_path, commons.ROUND_BEGIN, round=2)
    os.kill(pid_of(run_dir, executor), sig)
    signalled_at = time.time()
    out, err = driver.communicate(timeout=240)
    assert driver.returncode == 0, err
    log = check_log_lines(log_path)
    for executor_log in run_dir.glob("executor-*.jsonl"):
        check_log_lines(executor_log)
    assert log[-1]["status"] == commons.STATUS_COMPLETED
    lost = next(e for e in log if e["tag"] == commons.EXECUTOR_LOST)
    assert lost["executor"] == executor
    assert not [e for e in log if e["tag"] == commons.CLIENT_FAILED and e["executor"] is not None]
    wait_until_gone(run_dir, timeout=5)
    return log, lost["wall_time"] - signalled_at, out


def test_executor_killed_mid_round_hands_its_clients_to_the_others(tmp_path):
    log, detected_after, out = signal_executor_in_round_2(tmp_path, "executor-2", signal.SIGKILL, rounds=5,
                                                          executor_restarts=0)
    assert detected_after < 3.0 + 1.0
    assert "restarting" not in out and "executor-2 exited" in out
    moved = [e for e in log if e["tag"] == commons.CLIENTS_REASSIGNED]
    assert [(e["round"], e["executor"], list(e["assignment"])) for e in moved] == [(2, "executor-2", ["executor-1"])]
    planned = next(e for e in log if e["tag"] == commons.ROUND_BEGIN and e["round"] == 2)["assignment"]
    assert set(moved[0]["assignment"]["executor-1"]) <= set(planned["executor-2"])
    later = [e for e in log if e["tag"] == commons.ROUND_BEGIN and e["round"] > 2]
    assert later and all(set(e["assignment"]) == {"executor-1"} for e in later)
    assert all(e["aggregated"] == 10 for e in log if e["tag"] == commons.ROUND_END)


def test_a_killed_executors_clients_train_as_they_would_have(tmp_path):
    """The default job with executor-2 killed in round 2 learns exactly what the uninterrupted
    recorded run learned: the same train losses and test accuracies, round by round, while the
    driver restarts executor-2."""
    log, _, out = signal_executor_in_round_2(tmp_path, "executor-2", signal.SIGKILL)
    assert "executor-2 exited" in out and "restarting it (1 of 3)" in out
    golden = events(ROOT / "tests" / "golden" / "default" / commons.AGGREGATOR_LOG)
    for tag, key in ((commons.ROUND_END, "train_loss"), (commons.ROUND_END, "aggregated"),
                     (commons.TEST_RESULT, "accuracy")):
        golden_rows = [(e["round"], e[key]) for e in golden if e["tag"] == tag]
        assert [(e["round"], e[key]) for e in log if e["tag"] == tag] == golden_rows, (tag, key)


def test_a_restarted_executor_rejoins_and_takes_its_share_of_later_rounds(tmp_path):
    log, _, out = signal_executor_in_round_2(tmp_path, "executor-2", signal.SIGKILL, rounds=8)
    assert "restarting it (1 of 3)" in out
    joins = [e for e in log if e["tag"] == commons.EXECUTOR_JOINED and e["executor"] == "executor-2"]
    assert len(joins) == 2 and 2 <= joins[1]["round"] < 8
    later = [e for e in log if e["tag"] == commons.ROUND_BEGIN and e["round"] > joins[1]["round"]]
    assert later and all(set(e["assignment"]) == {"executor-1", "executor-2"} for e in later)
    assert all(e["aggregated"] == 10 for e in log if e["tag"] == commons.ROUND_END)


def test_a_lone_executor_killed_mid_round_is_restarted_and_finishes_the_round(tmp_path):
    log, _, out = signal_executor_in_round_2(tmp_path, "executor-1", signal.SIGKILL, rounds=3, executors=1)
    assert "restarting it (1 of 3)" in out
    moved = [e for e in log if e["tag"] == commons.CLIENTS_REASSIGNED]
    assert [(e["round"], e["executor"], list(e["assignment"])) for e in moved] == [(2, "executor-1", ["executor-1"])]
    assert [e["aggregated"] for e in log if e["tag"] == commons.ROUND_END] == [10, 10, 10]


def test_the_job_fails_once_its_executors_are_past_their_restarts(tmp_path):
    """With ``executor_restarts: 1`` the lone executor killed twice is not restarted again: the
    aggregator waits connection_timeout for one to rejoin, then fails naming why."""
    job = write_job(tmp_path, executors=1, executor_restarts=1, connection_timeout=10, **SLOW)
    driver = start_driver(tmp_path, "submit", str(job))
    run_dir = wait_for_run_dir(tmp_path)
    log_path = run_dir / commons.AGGREGATOR_LOG
    wait_for_event(log_path, commons.ROUND_BEGIN, round=2)
    os.kill(pid_of(run_dir, "executor-1"), signal.SIGKILL)
    wait_for_event(log_path, commons.EXECUTOR_JOINED, round=2)
    os.kill(pid_of(run_dir, "executor-1"), signal.SIGKILL)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 1
    assert "restarting it (1 of 1)" in out and "not restarted: it was restarted 1 times" in out
    assert "every executor was lost and none rejoined within connection_timeout=10 s" in err
    assert events(log_path)[-1]["status"] == commons.STATUS_FAILED


def test_executor_that_stops_answering_is_dropped(tmp_path):
    log, detected_after, _ = signal_executor_in_round_2(tmp_path, "executor-1", signal.SIGSTOP, rounds=4)
    assert 3.0 - 0.5 < detected_after < 3.0 + 2.0
    assert "no message" in next(e for e in log if e["tag"] == commons.EXECUTOR_LOST)["reason"]


def test_executors_exit_when_the_aggregator_dies(tmp_path):
    from fedscale.cloud.config_parser import load_job
    from fedscale.deploy.submit import make_run_dir
    job, run_dir = make_run_dir(load_job(str(write_job(tmp_path, **SLOW))))
    launcher = LocalLauncher(job, run_dir, process_env("secret"))
    aggregator = launcher.start_aggregator()
    begin = wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.JOB_BEGIN)
    for i in (1, 2):
        launcher.start_executor(f"executor-{i}", begin["address"])
    wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, round=2)
    aggregator.kill()
    try:
        for executor in launcher.executors.values():
            executor.wait(timeout=3.0 + 5.0)
    finally:
        launcher.terminate(grace=1)
    assert not job_pids(run_dir)


def test_wrong_secret_is_refused(tmp_path):
    driver = start_driver(tmp_path, "submit", str(write_job(tmp_path, executors=1, **SLOW)))
    run_dir = wait_for_run_dir(tmp_path)
    begin = wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.JOB_BEGIN)
    wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, round=1)
    intruder = subprocess.run(
        [sys.executable, "-m", "fedscale.cloud.execution.executor", "--run-dir", str(run_dir),
         "--executor-id", "intruder", "--address", begin["address"]],
        env=dict(driver_env(tmp_path), **{commons.SECRET_ENV: "not-the-secret"}),
        capture_output=True, text=True, timeout=60)
    assert intruder.returncode == 4
    assert "refused the job secret" in intruder.stderr
    assert not any(e.get("executor") == "intruder" for e in events(run_dir / commons.AGGREGATOR_LOG))
    driver.send_signal(signal.SIGINT)
    driver.wait(timeout=10)


@pytest.mark.parametrize("conf, expected", [
    ({"learning_rat": 0.1}, "did you mean 'learning_rate'"),
    ({"rounds": "many"}, "job_conf.rounds"),
    ({"num_participants": 50}, "num_participants"),
    ({"data_set": "cifar10"}, "data_set"),
    ({"data_map_file": "/nonexistent/map.csv"}, "data_map_file"),
])
def test_config_errors_stop_before_any_process(tmp_path, conf, expected):
    done = run_driver(tmp_path, "submit", str(write_job(tmp_path, **conf)))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], done.stderr
    assert "job.yml" in lines[0]
    assert not (tmp_path / "logs").exists()


def test_missing_job_file_and_remote_host_are_one_line_errors(tmp_path):
    done = run_driver(tmp_path, "submit", str(tmp_path / "nope.yml"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "nope.yml" in done.stderr
    job = write_job(tmp_path)
    job.write_text(job.read_text().replace("127.0.0.1:[2]", "10.0.0.9:[2]"))
    done = run_driver(tmp_path, "submit", str(job))  # an ssh job, refused before any host is contacted
    assert done.returncode == 2 and "ps_ip: 127.0.0.1 cannot be reached from 10.0.0.9" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = run_driver(tmp_path, "submit", "--launcher", "local", str(job))
    assert done.returncode == 2 and "worker_ips: host '10.0.0.9' is remote" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists()
    (tmp_path / "file").write_text("")
    done = run_driver(tmp_path, "submit", str(write_job(tmp_path, log_path=str(tmp_path / "file" / "x"))))
    assert done.returncode == 2 and "log_path" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("in_process, says", [(False, "executor-1 exited: "), (True, "job small failed: ")])
def test_bad_data_fails_the_job_with_the_reason(tmp_path, in_process, says):
    """Data the checks passed but an executor cannot read (here an image that is not one) ends
    the job in one line naming the file, from an executor process or the aggregator's own."""
    data_dir = write_femnist_fixture(str(tmp_path / "femnist"), num_clients=4, samples_per_client=4, seed=1)
    next((tmp_path / "femnist" / "data").rglob("*.png")).write_bytes(b"not an image")
    done = run_driver(tmp_path, "submit", str(write_job(tmp_path, executors=1, data_set="femnist", data_dir=data_dir,
                                                        num_participants=2, in_process_executor=in_process)))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and ".png" in lines[0], done.stderr
    assert not job_pids(run_dirs(tmp_path)[-1])


def test_every_interface_is_announced_and_a_hand_started_aggregator_needs_the_secret(tmp_path):
    path = write_job(tmp_path, executors=1, rounds=1)
    path.write_text(path.read_text().replace("ps_ip: 127.0.0.1", "ps_ip: 0.0.0.0"))
    done = run_driver(tmp_path, "submit", str(path))
    assert done.returncode == 0, done.stderr
    assert "note: ps_ip 0.0.0.0 serves the job on every network interface in plaintext gRPC" in done.stderr
    run_dir = run_dirs(tmp_path)[-1]
    env = {k: v for k, v in driver_env(tmp_path).items() if k != commons.SECRET_ENV}
    by_hand = subprocess.run([sys.executable, "-m", "fedscale.cloud.aggregation.aggregator", "--run-dir",
                              str(run_dir)], env=env, capture_output=True, text=True, timeout=120)
    assert by_hand.returncode != 0
    assert events(run_dir / commons.AGGREGATOR_LOG)[-1]["reason"].startswith(
        "refusing to serve without a job secret")
