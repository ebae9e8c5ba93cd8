"""One run of a sweep in its own folder, done the same way wherever it runs (the local runner, a
Slurm array task, a Kubernetes pod), so every backend leaves the same files.

``prepare_run`` empties the folder and writes job.yml and config.json; ``RunProcess`` starts the
job as ``fedscale submit --no-plots job.yml`` in a process (and session) of its own, its output in
driver.out, stops it past the run's wall budget or when asked, and at its end writes
outcome.json (how the driver ended), rounds.csv and summary.json (from the job's event log).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from fedscale.cloud.aggregation.server_algorithms import DEFAULT_ALGORITHM, SERVER_ALGORITHMS
from fedscale.cloud.logger.rounds import aggregator_events, round_rows
from fedscale.deploy.local import child_setup, last_line
from fedscale.sweep.results import (COMPLETED, ERROR, NOT_RUN, STOPPED, WALL_BUDGET, read_json, summarize, write_json,
                                    write_rounds)
from fedscale.sweep.spec import RunSpec

POLL_SECONDS = 0.2
STOP_GRACE = 20.0
EXIT_STOPPED = 130


def strategy_label(spec: RunSpec, conf: Any) -> str:
    """The strategy as written, or what the run's keys make it: the server algorithm by its
    Flower name (FedAvg, FedYogi...), with a robust aggregation spec other than the mean."""
    if spec.strategy:
        return spec.strategy
    algorithm = SERVER_ALGORITHMS[conf.server.gradient_policy or DEFAULT_ALGORITHM]
    aggregator = conf.robustness.aggregator
    if aggregator == "mean":
        return algorithm.__name__
    return aggregator if algorithm.name == DEFAULT_ALGORITHM else f"{algorithm.__name__}+{aggregator}"


def prepare_run(spec: RunSpec, folder: Path) -> None:
    """An empty ``folder`` with the run's job.yml and config.json (its spec, resolved job and
    config hash); whatever an earlier attempt left there is removed first."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    data = spec.job_data(folder)
    (folder / "job.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    write_json(folder / "config.json", {"spec": spec.model_dump(), "job": data, "config_hash": spec.config_hash()})


def run_env(spec: RunSpec, folder: Path) -> dict[str, str]:
    """A run's environment: for W&B (when the job logs to it), the sweep folder's name is the
    group, the strategy the job type and the run its name."""
    return dict(os.environ, PYTHONUNBUFFERED="1", WANDB_RUN_GROUP=folder.parent.name,
                WANDB_JOB_TYPE=strategy_label(spec, spec.job(folder).conf), WANDB_NAME=spec.run_id)


def write_outcome(folder: Path, status: str, reason: str, **facts: Any) -> None:
    """outcome.json: why a run ended as it did, when its job's log cannot say (a driver that
    failed, a stop, a budget, a run never started)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "outcome.json", {"status": status, "reason": reason, **facts})


class RunProcess:
    """A prepared run's driver process (``fedscale submit``), from its start to its files."""

    def __init__(self, spec: RunSpec, folder: Path, cores: tuple[int, ...] = ()) -> None:
        self.spec, self.folder = spec, folder
        self.stopped_for = ""
        self._kill_at = float("inf")
        with open(folder / "driver.out", "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fedscale.cli", "submit", "--no-plots", str(folder / "job.yml")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=run_env(spec, folder), preexec_fn=child_setup(cores))
        self.started = time.monotonic()

    def stop(self, why: str = STOPPED) -> None:
        """Ask the driver to stop its job (SIGTERM); it is killed if still there ``STOP_GRACE``
        seconds later. ``why`` becomes the run's status."""
        if not self.stopped_for:
            self.stopped_for = why
            self._kill_at = time.monotonic() + STOP_GRACE
            self.proc.send_signal(signal.SIGTERM)

    def ended(self) -> bool:
        """Whether the driver has exited; on the way, stops a run past its wall budget and kills a
        driver that outlived its grace."""
        if self.proc.poll() is not None:
            return True
        now = time.monotonic()
        if self.spec.wall_budget and now - self.started > self.spec.wall_budget:
            self.stop(WALL_BUDGET)
        if now > self._kill_at:
            self.proc.kill()
            self.proc.wait()
            return True
        return False

    def finish(self) -> dict[str, Any]:
        """Write outcome.json, rounds.csv and summary.json for the ended driver; return the run's
        record (``run_record``)."""
        code = self.proc.returncode
        if self.stopped_for:
            status, reason = self.stopped_for, f"stopped by the sweep ({self.stopped_for})"
        elif code == 0:
            status, reason = COMPLETED, ""
        else:
            status = STOPPED if code == EXIT_STOPPED else ERROR
            reason = last_line(self.folder / "driver.out") or f"the driver exited with code {code}"
        write_outcome(self.folder, status, reason, exit_code=code, elapsed_seconds=time.monotonic() - self.started)
        return write_run_files(self.spec, self.folder)


def run_record(spec: RunSpec, folder: Path, events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the comparison needs of one run: labels, status and summary (from the job's
    ``events``; the folder's outcome.json says why a run has no end of its own)."""
    job = spec.job(folder)
    summary = summarize(events, spec.target_metric, spec.target_value)
    outcome = read_json(folder / "outcome.json") or {}
    summary["elapsed_seconds"] = outcome.get("elapsed_seconds")
    if outcome.get("status") in (WALL_BUDGET, NOT_RUN) or (outcome and summary["status"] == ERROR
                                                          and not summary["reason"]):
        summary["status"], summary["reason"] = outcome["status"], outcome.get("reason", "")
    return {"run_id": spec.run_id, "group": spec.group, "strategy": strategy_label(spec, job.conf),
            "selector": job.conf.selection.sample_mode, "attack": spec.attack or "none", "seed": spec.seed,
            "status": summary["status"], "reason": summary["reason"], "config_hash": spec.config_hash(),
            "summary": summary}


def write_run_files(spec: RunSpec, folder: Path) -> dict[str, Any]:
    """A run folder's rounds.csv and summary.json, from its event log (read once); returns the
    run's record (``run_record``)."""
    events = aggregator_events(folder)
    record = run_record(spec, folder, events)
    if folder.exists():
        write_rounds(folder / "rounds.csv", round_rows(events))
        write_json(folder / "summary.json", {**record["summary"], "run_id": spec.run_id})
    return record
