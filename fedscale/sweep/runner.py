"""Runs a sweep on this machine: each run a real job started by ``fedscale submit`` in a process
of its own (``fedscale.sweep.run``), up to ``parallel`` at once, then the run folders, the
comparison and the manifest.

Each run gets its own folder ``<out>/<run_id>/`` (job.yml, config.json, driver.out, the job's
log folder, and at its end outcome.json, rounds.csv and summary.json), a free port (ps_port 0)
and, when the machine has the cores, cores of its own: a run's processes are pinned to as many
cores as it has executor threads (executors x torch_threads, one thread each by default), so
parallel runs never share a core. An aggregator and its executors mostly take turns (it waits
while they train), so a run needs about one core per executor thread; ``default_parallel``
counts them. The sweep folder also holds plan.json (``fedscale.sweep.plan``), so any of its runs
can be run again, or elsewhere, by index (``fedscale.sweep.cell``).

A failed run is recorded as ``error`` with its reason and the others carry on; Ctrl-C or
SIGTERM stops every running job (each driver ends its job's process group) within seconds,
records the runs not started as ``not_run``, and still writes everything.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from fedscale.cloud import commons
from fedscale.cloud.logger.events import EventTail
from fedscale.cloud.logger.rounds import aggregator_log
from fedscale.sweep import compare
from fedscale.sweep.manifest import manifest
from fedscale.sweep.plan import write_plan
from fedscale.sweep.results import COMPLETED, ERROR, NOT_RUN, STOPPED, read_json, write_json
from fedscale.sweep.run import POLL_SECONDS, RunProcess, prepare_run, write_outcome, write_run_files
from fedscale.sweep.spec import RunSpec, Sweep


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
    process: RunProcess | None = None
    started: float = 0.0
    elapsed: float = 0.0
    cores: tuple[int, ...] = ()
    tail: EventTail | None = None
    round: int = 0
    virtual_time: float = 0.0
    accuracy: float | None = None
    record: dict[str, Any] = field(default_factory=dict)


class SweepRunner:
    """Runs ``sweep`` into ``out`` with up to ``parallel`` runs at once; ``resume`` skips runs
    already completed there with the same config hash.

    ``run`` writes the plan and manifest, keeps resumed runs, hands the others to
    ``_run_pending`` (here: local processes; ``fedscale.sweep.slurm`` overrides it) and writes
    the comparison, so every backend shares the sweep's bookkeeping and its files."""

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

    # -- one run ---------------------------------------------------------------------------------
    def _already_done(self, state: RunState) -> bool:
        config = read_json(state.folder / "config.json") or {}
        summary = read_json(state.folder / "summary.json") or {}
        return (self.resume and config.get("config_hash") == state.spec.config_hash()
                and summary.get("status") == COMPLETED)

    def _start(self, state: RunState) -> None:
        prepare_run(state.spec, state.folder)
        if self.free_cores and len(self.free_cores) >= state.cores_needed:
            state.cores = tuple(self.free_cores[:state.cores_needed])
            del self.free_cores[:state.cores_needed]
        state.process = RunProcess(state.spec, state.folder, state.cores)
        state.status, state.started = "running", state.process.started

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
        self.free_cores.extend(state.cores)
        self.free_cores.sort()
        self._record(state, state.process.finish())

    def _write_run(self, state: RunState) -> None:
        """Record a run from its folder as it stands (rounds.csv and summary.json rewritten)."""
        self._record(state, write_run_files(state.spec, state.folder))

    def _record(self, state: RunState, record: dict[str, Any]) -> None:
        state.record, state.status, state.reason = record, record["status"], record["reason"]
        state.elapsed = record["summary"]["elapsed_seconds"] or 0.0

    def _not_run(self, state: RunState) -> None:
        """Record a run the interrupted sweep never started."""
        write_outcome(state.folder, NOT_RUN, f"the sweep was stopped by {self._interrupted}")
        self._write_run(state)

    # -- the loop --------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        self._interrupted = signal.Signals(signum).name

    def run(self) -> dict[str, Any]:
        """Run every run, write the sweep's files, and return the comparison."""
        started = time.monotonic()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        display = make_display(self.stream, len(self.states))
        try:
            write_plan(self.sweep, self.out)
            write_json(self.out / "manifest.json", manifest(self.sweep, self.parallel, self.states))
            pending = []
            for state in self.states:
                if self._already_done(state):
                    self._write_run(state)
                    state.reason = "kept from an earlier sweep (--resume)"
                    display.changed(state)
                else:
                    pending.append(state)
            self._run_pending(pending, display)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            display.refresh(self.states)
            display.close()
        self.wall_seconds = time.monotonic() - started
        return self.write_outputs()

    def _run_pending(self, pending: list[RunState], display: Any) -> None:
        """Run ``pending`` here, ``parallel`` at a time, until they end or the sweep is interrupted."""
        pending = list(pending)
        running: list[RunState] = []
        while (pending or running) and not self._interrupted:
            while pending and len(running) < self.parallel:
                state = pending.pop(0)
                self._start(state)
                running.append(state)
                display.changed(state)
            for state in list(running):
                self._follow(state)
                if state.process.ended():
                    self._follow(state)
                    self._finish(state)
                    running.remove(state)
                    display.changed(state)
            display.refresh(self.states)
            time.sleep(POLL_SECONDS)
        if self._interrupted:
            self._stop(running, display)
            for state in pending:
                self._not_run(state)

    def _stop(self, running: list[RunState], display: Any) -> None:
        """End every running job: SIGTERM to each driver (it stops its job's processes), SIGKILL
        to a driver still there after ``STOP_GRACE`` (its processes die with it)."""
        for state in running:
            state.process.stop()
        while running:
            for state in list(running):
                if state.process.ended():
                    self._finish(state)
                    running.remove(state)
                    display.changed(state)
            time.sleep(POLL_SECONDS)

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
