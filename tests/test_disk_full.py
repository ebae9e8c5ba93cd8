"""A job whose files cannot be written ends with the file and the error named, nothing left half-written.

The driver runs under a file-size limit (RLIMIT_FSIZE, inherited by the aggregator and the
executors): a write past it fails with EFBIG in the kernel, as a write to a full disk fails
with ENOSPC.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

from fedscale.cloud import commons
from tests.jobs import DRIVER, driver_env, run_dirs, write_job


def run_with_file_limit(folder: Path, job: Path, limit: int) -> subprocess.CompletedProcess:
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, str(DRIVER), "submit", str(job)], cwd=folder, env=driver_env(folder),
                          capture_output=True, text=True, timeout=240, preexec_fn=limit_file_size)


def lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n"), f"{path} ends with a torn line"
    return [json.loads(line) for line in text.splitlines()]


def test_an_event_log_that_cannot_grow_ends_the_job_naming_it(tmp_path):
    job = write_job(tmp_path, executors=1, rounds=30, save_checkpoint=False)
    done = run_with_file_limit(tmp_path, job, 8000)
    run_dir = run_dirs(tmp_path)[-1]
    log = run_dir / commons.AGGREGATOR_LOG
    assert done.returncode == 1
    assert f"cannot write the event log {log}: File too large" in done.stderr
    assert "Traceback" not in done.stderr + (run_dir / "aggregator.out").read_text()
    events = lines(log)
    assert events[-1]["tag"] != commons.JOB_END or events[-1]["status"] == commons.STATUS_FAILED


def test_a_checkpoint_that_cannot_be_written_is_named_and_removed(tmp_path):
    job = write_job(tmp_path, executors=1, rounds=4)
    done = run_with_file_limit(tmp_path, job, 20000)
    run_dir = run_dirs(tmp_path)[-1]
    folder = run_dir / "checkpoint"
    assert done.returncode == 1
    end = lines(run_dir / commons.AGGREGATOR_LOG)[-1]
    assert end["tag"] == commons.JOB_END and end["status"] == commons.STATUS_FAILED
    assert end["reason"].startswith(f"cannot write the checkpoint {folder}/") and end["reason"].endswith(
        ": File too large"), end["reason"]
    assert end["reason"] in done.stderr
    assert not list(folder.glob("*.tmp"))
