"""A job's template process: forks its aggregator and executors, reports how they end, names them
in ps, and takes them with it when it ends."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fedscale.cloud import commons
from fedscale.cloud.config_parser import load_job, parse_job
from fedscale.deploy.local import LocalLauncher, Template, TemplateError, process_env
from fedscale.deploy.submit import make_run_dir
from tests.jobs import DRIVER, ROOT, driver_env, events, job_pids, run_driver, run_dirs, wait_for_event, write_job


def test_a_forked_program_reports_its_exit_code_and_output(tmp_path):
    run_dir = tmp_path / "not-a-run-folder"
    run_dir.mkdir()
    launcher = LocalLauncher(parse_job({}, "<default>"), run_dir, process_env("secret"))
    try:
        executor = launcher.start_executor("executor-1", "127.0.0.1:1")
        assert executor.wait(timeout=30) != 0
        assert "job.json" in (run_dir / "executor-1.out").read_text()
    finally:
        launcher.terminate(grace=1)
    assert launcher.template is not None and launcher.template.proc.returncode is not None


def test_ps_names_each_process_and_ending_the_template_ends_them(tmp_path):
    job, run_dir = make_run_dir(load_job(str(write_job(tmp_path, executors=2, rounds=1000))))
    launcher = LocalLauncher(job, run_dir, process_env("secret"))
    try:
        launcher.start_aggregator()
        address = wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.JOB_BEGIN)["address"]
        for i in (1, 2):
            launcher.start_executor(f"executor-{i}", address)
        wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, round=2)
        commands = sorted(job_pids(run_dir).values())
        assert [c.split()[:2] for c in commands] == [["fedscale", "aggregator"], ["fedscale", "executor-1"],
                                                     ["fedscale", "executor-2"], ["fedscale", "template"]]
        assert all(c.split()[2] == str(run_dir) for c in commands)
        launcher.template.close()  # its stdin closes, as when the driver dies
        for process in launcher.processes():
            assert process.wait(timeout=10) is not None
    finally:
        launcher.terminate(grace=1)
    assert not job_pids(run_dir)
    assert events(run_dir / commons.AGGREGATOR_LOG)[-1]["status"] == commons.STATUS_STOPPED


def test_a_template_that_cannot_fork_is_one_line(tmp_path):
    template = Template(tmp_path, process_env("secret"))
    try:
        with pytest.raises(TemplateError, match=r"template process ended .* before starting the shell: .*unknown program"):
            template.spawn("shell", [], tmp_path / "out", "x")
    finally:
        template.close(grace=1)


def test_children_train_with_several_torch_threads(tmp_path):
    """The template never starts a thread pool, so a child using two threads does not hang."""
    done = run_driver(tmp_path, "submit", str(write_job(tmp_path, executors=1, rounds=2, torch_threads=2)),
                      timeout=120)
    assert done.returncode == 0, done.stderr
    assert events(run_dirs(tmp_path)[-1] / commons.AGGREGATOR_LOG)[-1]["rounds_completed"] == 2


def test_a_title_longer_than_the_command_line_is_cut():
    code = ("import sys; from fedscale.deploy.zygote import set_title; set_title('fedscale ' + 'x' * 500); "
            "print(open('/proc/self/cmdline', 'rb').read().rstrip(b'\\0').decode())")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert shown.startswith("fedscale xxx") and len(shown.strip()) < 500


def test_a_template_that_cannot_start_is_a_one_line_error(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys\nif 'fedscale.deploy.zygote' in sys.orig_argv:\n    raise SystemExit('torch is broken here')\n")
    env = dict(driver_env(tmp_path), PYTHONPATH=os.pathsep.join([str(shim), driver_env(tmp_path)["PYTHONPATH"]]))
    done = subprocess.run([sys.executable, str(DRIVER), "submit", str(write_job(tmp_path, executors=1, rounds=2))],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "template process ended" in lines[0] and "torch is broken here" in lines[0], lines
