"""Runs a sweep: each run a real job started by ``fedscale submit`` in a process of its own, up
to ``parallel`` at once, then the run folders, the comparison and the manifest.

Each run gets its own folder ``<out>/<run_id>/`` (job.yml, config.json, driver.out, the job's
log folder, and at its end rounds.csv and summary.json), a free port (ps_port 0) and, when the
machine has the cores, cores of its own: a run's processes are pinned to as many cores as it
has executor threads (executors x torch_threads, one thread each by default), so parallel runs
never share a core. An aggregator and its executors mostly take turns (it waits while they
train), so a run needs about one core per executor thread; ``default_parallel`` counts them.

A failed run is recorded as ``error`` with its reason and the others carry on; Ctrl-C or
SIGTERM stops every running job (each driver ends its job's process group) within seconds,
records the runs not started as ``not_run``, and still writes everything.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from fedscale.cloud import commons
from fedscale.cloud.aggregation.server_algorithms import DEFAULT_ALGORITHM, SERVER_ALGORITHMS
from fedscale.cloud.logger.events import EventTail
from fedscale.cloud.logger.rounds import aggregator_events, aggregator_log, round_rows
from fedscale.deploy.local import child_setup, last_line
from fedscale.sweep import compare
from fedscale.sweep.manifest import manifest
from fedscale.sweep.results import (COMPLETED, ERROR, NOT_RUN, STOPPED, WALL_BUDGET, read_json, summarize, write_json,
                                    write_rounds)
from fedscale.sweep.spec import RunSpec, Sweep

POLL_SECONDS = 0.2
STOP_GRACE = 20.0
EXIT_STOPPED = 130


def cores_needed(run: RunSpec) -> int:
    """The cores a run keeps busy: one per torch thread of each executor."""
    job = run.job(Path("/sweep-check"))
    return job.num_executors * job.conf.cluster.torch_threads


def default_parallel(sweep: Sweep) -> int:
    """As many runs as this machine's cores hold (``cores_needed`` each)."""
    return max(1, len(os.sched_getaffinity(0)) // max(cores_needed(run) for run in sweep.runs))


def default_out() -> Path:
    return Path("out") / (time.strftime("%Y-%m-%dT%H-%M-%S") + "-sweep")


@dataclass
class RunState:
    """A run as the sweep follows it."""

    spec: RunSpec
    folder: Path
    cores_needed: int
    status: str = "pending"
    reason: str = ""
    proc: subprocess.Popen | None = None
    started: float = 0.0
    elapsed: float = 0.0
    cores: tuple[int, ...] = ()
    tail: EventTail | None = None
    round: int = 0
    virtual_time: float = 0.0
    accuracy: float | None = None
    stopped_for: str = ""
    record: dict[str, Any] = field(default_factory=dict)


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


class SweepRunner:
    """Runs ``sweep`` into ``out`` with up to ``parallel`` runs at once; ``resume`` skips runs
    already completed there with the same config hash."""

    def __init__(self, sweep: Sweep, out: Path, parallel: int | None = None, resume: bool = False,
                 stream: TextIO = sys.stdout) -> None:
        self.sweep, self.out, self.resume = sweep, Path(out), resume
        self.parallel = parallel or default_parallel(sweep)
        self.states = [RunState(run, self.out / run.run_id, cores_needed(run)) for run in sweep.runs]
        cores = sorted(os.sched_getaffinity(0))
        per_run = max(s.cores_needed for s in self.states)
        self.free_cores = cores if self.parallel * per_run <= len(cores) else []
        self.stream = stream
        self._interrupted = ""
        self.wall_seconds = 0.0

    # -- launching -------------------------------------------------------------------------------
    def _already_done(self, state: RunState) -> bool:
        config = read_json(state.folder / "config.json") or {}
        summary = read_json(state.folder / "summary.json") or {}
        return (self.resume and config.get("config_hash") == state.spec.config_hash()
                and summary.get("status") == COMPLETED)

    def _start(self, state: RunState) -> None:
        if state.folder.exists():
            shutil.rmtree(state.folder)
        state.folder.mkdir(parents=True)
        data = state.spec.job_data(state.folder)
        (state.folder / "job.yml").write_text(yaml.safe_dump(data, sort_keys=False))
        write_json(state.folder / "config.json", {"spec": state.spec.model_dump(), "job": data,
                                                   "config_hash": state.spec.config_hash()})
        if self.free_cores and len(self.free_cores) >= state.cores_needed:
            state.cores = tuple(self.free_cores[:state.cores_needed])
            del self.free_cores[:state.cores_needed]
        out = open(state.folder / "driver.out", "wb")
        try:
            state.proc = subprocess.Popen(
                [sys.executable, "-m", "fedscale.cli", "submit", "--no-plots", str(state.folder / "job.yml")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=self._run_env(state), preexec_fn=child_setup(state.cores))
        finally:
            out.close()
        state.status, state.started = "running", time.monotonic()

    def _run_env(self, state: RunState) -> dict[str, str]:
        """A run's environment: for W&B (when the jobs log to it), the sweep is the group, the
        strategy the job type and the run its name."""
        strategy = strategy_label(state.spec, state.spec.job(state.folder).conf)
        return dict(os.environ, PYTHONUNBUFFERED="1", WANDB_RUN_GROUP=self.out.name, WANDB_JOB_TYPE=strategy,
                    WANDB_NAME=state.spec.run_id)

    def _follow(self, state: RunState) -> None:
        if state.tail is None:
            log = aggregator_log(state.folder)
            if log is None:
                return
            state.tail = EventTail(log)
        for event in state.tail.poll():
            if event["tag"] == commons.ROUND_END:
                state.round, state.virtual_time = event["round"], event["virtual_time"]
            elif event["tag"] == commons.TEST_RESULT:
                state.accuracy = event.get("accuracy")

    def _finish(self, state: RunState) -> None:
        """Record a run whose driver exited: outcome.json, rounds.csv, summary.json."""
        code = state.proc.returncode
        state.elapsed = time.monotonic() - state.started
        self.free_cores.extend(state.cores)
        self.free_cores.sort()
        if state.stopped_for:
            status, reason = state.stopped_for, f"stopped by the sweep ({state.stopped_for})"
        elif code == 0:
            status, reason = COMPLETED, ""
        else:
            status = STOPPED if code == EXIT_STOPPED else ERROR
            reason = last_line(state.folder / "driver.out") or f"the driver exited with code {code}"
        write_json(state.folder / "outcome.json", {"status": status, "reason": reason, "exit_code": code,
                                                    "elapsed_seconds": state.elapsed})
        self._write_run(state)

    def _write_run(self, state: RunState) -> None:
        state.record = write_run_files(state.spec, state.folder)
        state.status, state.reason = state.record["status"], state.record["reason"]

    # -- the loop --------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        self._interrupted = signal.Signals(signum).name

    def run(self) -> dict[str, Any]:
        """Run every run, write the sweep's files, and return the comparison."""
        self.out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        display = make_display(self.stream, len(self.states))
        try:
            write_json(self.out / "manifest.json", manifest(self.sweep, self.parallel, self.states))
            pending = []
            for state in self.states:
                if self._already_done(state):
                    self._write_run(state)
                    state.reason = "kept from an earlier sweep (--resume)"
                    display.changed(state)
                else:
                    pending.append(state)
            running: list[RunState] = []
            while (pending or running) and not self._interrupted:
                while pending and len(running) < self.parallel:
                    state = pending.pop(0)
                    self._start(state)
                    running.append(state)
                    display.changed(state)
                for state in list(running):
                    self._follow(state)
                    if state.proc.poll() is not None:
                        self._follow(state)
                        self._finish(state)
                        running.remove(state)
                        display.changed(state)
                    elif state.spec.wall_budget and time.monotonic() - state.started > state.spec.wall_budget:
                        if not state.stopped_for:
                            state.stopped_for = WALL_BUDGET
                            state.proc.send_signal(signal.SIGTERM)
                display.refresh(self.states)
                time.sleep(POLL_SECONDS)
            if self._interrupted:
                self._stop(running, display)
                for state in pending:
                    state.folder.mkdir(parents=True, exist_ok=True)
                    write_json(state.folder / "outcome.json",
                                {"status": NOT_RUN, "reason": f"the sweep was stopped by {self._interrupted}"})
                    self._write_run(state)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            display.refresh(self.states)
            display.close()
        self.wall_seconds = time.monotonic() - started
        return self.write_outputs()

    def _stop(self, running: list[RunState], display: Any) -> None:
        """End every running job: SIGTERM to each driver (it stops its job's processes), SIGKILL
        to a driver still there after ``STOP_GRACE`` (its processes die with it)."""
        for state in running:
            state.stopped_for = state.stopped_for or STOPPED
            state.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for state in running:
            try:
                state.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                state.proc.kill()
                state.proc.wait()
            self._finish(state)
            display.changed(state)

    def write_outputs(self) -> dict[str, Any]:
        """manifest.json, comparison.json, comparison.md and the plots, from the run records."""
        records = [s.record for s in self.states if s.record]
        write_json(self.out / "manifest.json", manifest(self.sweep, self.parallel, self.states, self.wall_seconds))
        return write_comparison(self.out, records, sweep_facts(self.out, self.sweep, self.parallel, self.wall_seconds))

    @property
    def interrupted(self) -> bool:
        return bool(self._interrupted)

    @property
    def failed(self) -> bool:
        return any(s.status in (ERROR, STOPPED, NOT_RUN) for s in self.states)


def sweep_facts(out: Path, sweep: Sweep, parallel: int, wall_seconds: float) -> dict[str, Any]:
    first = sweep.runs[0]
    return {"name": out.name, "source": sweep.source, "parallel": parallel, "seeds": sweep.seeds,
            "wall_seconds": wall_seconds, "target_metric": first.target_metric, "target_value": first.target_value}


def write_comparison(out: Path, records: list[dict[str, Any]], facts: dict[str, Any]) -> dict[str, Any]:
    comparison = compare.build(records, facts)
    write_json(out / "comparison.json", comparison)
    (out / "comparison.md").write_text(compare.render(comparison))
    from fedscale.sweep.plots import write_plots
    write_plots(out, comparison)
    return comparison


def report(out: Path) -> dict[str, Any]:
    """Rebuild every run's rounds.csv and summary.json and the comparison from the run folders'
    event logs (the runs and the sweep's facts from manifest.json)."""
    from fedscale.cloud.config_parser import ConfigError
    data = read_json(out / "manifest.json")
    if not data or "spec" not in data:
        raise ConfigError(f"{out}: not a sweep folder (no readable manifest.json)")
    sweep = Sweep.model_validate(data["spec"])
    records = [write_run_files(run, out / run.run_id) for run in sweep.runs]
    return write_comparison(out, records, sweep_facts(out, sweep, data["parallel"], data["wall_seconds"]))


def make_display(stream: TextIO, total: int) -> Any:
    from fedscale.sweep.display import LiveTable, PlainLines
    if stream.isatty():
        try:
            return LiveTable(stream, total)
        except ImportError:
            pass
    return PlainLines(stream, total)
