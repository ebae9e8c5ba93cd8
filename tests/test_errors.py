"""Client failures versus bugs in real jobs: a failing client is one CLIENT_FAILED event and the
job goes on; a bug in any process ends the job with one line pointing to its traceback.

Bugs are injected from outside the code under test: a ``sitecustomize`` module on the job's
PYTHONPATH patches one method in the process it targets."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from fedscale.cloud import commons
from tests.jobs import DRIVER, ROOT, driver_env, events, run_dirs, run_driver, write_job

SHIM = """
import sys

if {module!r} in sys.orig_argv or "fedscale.deploy.zygote" in sys.orig_argv:  # the job's processes fork from it
    import {owner} as owner

    def broken(self, *args, **kwargs):
        raise ZeroDivisionError("injected")

    setattr(owner.{cls}, {method!r}, broken)
"""


def test_clients_whose_training_diverges_fail_and_the_job_goes_on(tmp_path):
    done = run_driver(tmp_path, "submit", str(write_job(tmp_path, executors=1, rounds=2, learning_rate=1e30)))
    assert done.returncode == 0, done.stderr
    log = events(run_dirs(tmp_path)[-1] / commons.AGGREGATOR_LOG)
    failed = [e for e in log if e["tag"] == commons.CLIENT_FAILED]
    assert failed and all(e["reason"] == "the training diverged: non-finite loss or update" for e in failed)
    assert {e["executor"] for e in failed} == {"executor-1"}
    assert [e["round"] for e in log if e["tag"] == commons.ROUND_END] == [1, 2]
    assert log[-1]["status"] == commons.STATUS_COMPLETED and log[-1]["rounds_completed"] == 2


@pytest.mark.parametrize("process, module, owner, cls, method, in_process", [
    ("executor-1", "fedscale.cloud.execution.executor", "fedscale.cloud.execution.torch_client", "TorchClient",
     "run_steps", False),
    ("executor-1", "fedscale.cloud.aggregation.aggregator", "fedscale.cloud.execution.torch_client", "TorchClient",
     "run_steps", True),
    ("aggregator", "fedscale.cloud.aggregation.aggregator", "fedscale.cloud.client_manager", "ClientManager",
     "finish_round", False),
])
def test_a_bug_ends_the_job_with_one_line_pointing_to_the_traceback(tmp_path, process, module, owner, cls,
                                                                      method, in_process):
    """An executor's bug points to its own console output; one in the aggregator's process
    (``in_process_executor``) to the aggregator's."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(textwrap.dedent(SHIM.format(module=module, owner=owner, cls=cls,
                                                                       method=method)))
    env = dict(driver_env(tmp_path), PYTHONPATH=os.pathsep.join([str(shim), str(ROOT)]))
    job = write_job(tmp_path, executors=1, rounds=3, in_process_executor=in_process)
    done = subprocess.run([sys.executable, str(DRIVER), "submit", str(job)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    run_dir = run_dirs(tmp_path)[-1]
    console = run_dir / commons.console_output_name("aggregator" if in_process else process)
    where = "" if process == "aggregator" else f" in {process}"
    reason = f"internal error{where}: ZeroDivisionError: injected (traceback in {console})"
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], done.stderr
    log = events(run_dir / commons.AGGREGATOR_LOG)
    assert log[-1]["tag"] == commons.JOB_END and log[-1]["reason"] == reason
    assert log[-1]["rounds_completed"] == 0 and not any(e["tag"] == commons.CLIENT_FAILED for e in log)
    output = console.read_text()
    assert "Traceback (most recent call last)" in output and "in broken" in output
    assert "ZeroDivisionError: injected" in output
