"""A job run on this machine trains executor-1 in the aggregator's process: no process for it,
the same rounds as when it is one, and ``in_process_executor: false`` brings the process back."""
from __future__ import annotations

import io
import signal

import pytest

from benchmark.kill_resume import round_events
from fedscale.cloud import commons
from fedscale.cloud.config_parser import JobSpec, load_job
from fedscale.deploy.local import LocalLauncher
from tests.jobs import (events, job_pids, run_dirs, run_driver, start_driver, wait_for_event, wait_for_run_dir,
                        wait_until_gone, write_job)


@pytest.mark.parametrize("executors, in_process, processes", [
    (1, True, []), (2, True, ["executor-2"]), (2, False, ["executor-1", "executor-2"])])
def test_the_local_launcher_keeps_executor_1_in_the_aggregator(tmp_path, executors, in_process, processes):
    job = load_job(str(write_job(tmp_path, executors=executors, in_process_executor=in_process)))
    job = LocalLauncher.prepare(job, io.StringIO().write)
    assert job.in_process is in_process and job.executor_processes == processes
    assert JobSpec.from_dict(job.to_dict()).in_process is in_process


def test_executor_1_in_the_aggregator_runs_the_rounds_it_runs_as_a_process(tmp_path):
    runs = {}
    for name, in_process in (("inside", True), ("apart", False)):
        folder = tmp_path / name
        folder.mkdir()
        job = write_job(folder, executors=2, rounds=4, in_process_executor=in_process)
        done = run_driver(folder, "submit", str(job))
        assert done.returncode == 0, done.stderr
        runs[name] = run_dirs(folder)[-1]
    inside, apart = runs["inside"], runs["apart"]
    assert JobSpec.read(inside).in_process and not JobSpec.read(apart).in_process
    assert not (inside / commons.console_output_name("executor-1")).exists()  # no process was started for it
    assert (inside / commons.console_output_name("executor-2")).exists()
    assert (apart / commons.console_output_name("executor-1")).exists()
    assert round_events(inside / commons.AGGREGATOR_LOG) == round_events(apart / commons.AGGREGATOR_LOG)
    begin = next(e for e in events(inside / commons.AGGREGATOR_LOG) if e["tag"] == commons.ROUND_BEGIN)
    assert set(begin["assignment"]) == {"executor-1", "executor-2"}
    own = events(inside / commons.executor_log_name("executor-1"))
    assert [e["tag"] for e in own] == [commons.EXECUTOR_JOINED, commons.JOB_END]
    assert own[-1]["status"] == commons.STATUS_COMPLETED and own[-1]["round"] == 4


def test_ctrl_c_stops_a_job_whose_executor_1_is_mid_training_in_the_aggregator(tmp_path):
    slow = dict(local_steps=300, batch_size=32, rounds=40, num_participants=10, eval_interval=100)
    driver = start_driver(tmp_path, "submit", str(write_job(tmp_path, in_process_executor=True, **slow)))
    run_dir = wait_for_run_dir(tmp_path)
    wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, round=2)
    titles = sorted(" ".join(command.split()[:2]) for command in job_pids(run_dir).values())
    assert titles == ["fedscale aggregator", "fedscale executor-2", "fedscale template"]
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=10) == 130
    wait_until_gone(run_dir, timeout=5)
    assert events(run_dir / commons.AGGREGATOR_LOG)[-1]["status"] == commons.STATUS_STOPPED
