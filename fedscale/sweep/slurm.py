"""A sweep's runs as one Slurm job array, through submitit, filling the same sweep folder a local
sweep does.

The sweep folder (on a file system the cluster's nodes share) gets its plan and manifest here;
each array task is one cell, ``fedscale.sweep.cell.run_cell(<sweep folder>, <run index>)``, which
runs its run exactly as the local runner would; this process follows the runs in their folders
and, once the array has ended, writes the comparison and the manifest (``SweepRunner``'s own
bookkeeping). Up to ``parallel`` tasks run at once (Slurm's array throttle; default every run),
each given the cores its run keeps busy (``cores_needed``). submitit keeps its job files and the
tasks' logs in ``<out>/slurm/``; the function it runs is found by import, and nothing received
from elsewhere is unpickled by the sweep (it never reads a task's result).

A task that ends without its run's outcome (killed before its cell could stop, out of memory, a node
lost) is recorded as ``error`` naming the task and its log. Ctrl-C or SIGTERM cancels every task
still queued or running: started runs are recorded as ``stopped``, the others as ``not_run``.
"""
from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from fedscale.cloud.config.keys import ConfigError
from fedscale.sweep.cell import run_cell
from fedscale.sweep.results import ERROR, STOPPED
from fedscale.sweep.run import POLL_SECONDS, STOP_GRACE, write_outcome
from fedscale.sweep.runner import RunState, SweepRunner
from fedscale.sweep.spec import Sweep

DEFAULT_TIME_MIN = 60


def slurm_executor(folder: Path) -> Any:
    """submitit's Slurm executor, keeping its files in ``folder``; one line when submitit or
    Slurm is missing."""
    try:
        import submitit
    except ImportError:
        raise ConfigError("sweep: --cluster slurm needs submitit: pip install -e '.[slurm]'") from None
    try:
        return submitit.AutoExecutor(folder=folder, cluster="slurm")
    except RuntimeError:
        raise ConfigError("sweep: --cluster slurm: no Slurm here (srun not found); run the sweep on a Slurm login "
                          "node") from None


class SlurmSweepRunner(SweepRunner):
    """Runs ``sweep`` into ``out`` as one Slurm job array of cells, ``partition`` and ``time_min``
    (each task's limit, minutes) as given; ``executor`` makes the submitit executor from its
    folder (``slurm_executor``; a test gives ``AutoExecutor(folder, cluster="local")``), at once,
    so a machine without Slurm fails before the sweep folder is touched."""

    def __init__(self, sweep: Sweep, out: Path, parallel: int | None = None, resume: bool = False,
                 stream: TextIO = sys.stdout, partition: str = "", time_min: int = DEFAULT_TIME_MIN,
                 executor: Callable[[Path], Any] = slurm_executor) -> None:
        super().__init__(sweep, out, parallel or len(sweep.runs), resume, stream)
        self.partition, self.time_min = partition, time_min
        self.executor = executor(self.out / "slurm")

    def _submit(self, pending: list[RunState]) -> list[Any]:
        """One array task per pending run (its index in the sweep); a run's folder left by an
        earlier sweep is removed first, so what appears there is this task's."""
        for state in pending:
            if state.folder.exists():
                shutil.rmtree(state.folder)
        parameters = {"name": f"sweep-{self.out.resolve().name}", "timeout_min": self.time_min,
                      "cpus_per_task": max(s.cores_needed for s in pending),
                      "slurm_array_parallelism": self.parallel}
        if self.partition:
            parameters["slurm_partition"] = self.partition
        self.executor.update_parameters(**parameters)
        from submitit.core.utils import FailedJobError, FailedSubmissionError
        index = {s.spec.run_id: i for i, s in enumerate(self.states)}
        indices = [index[s.spec.run_id] for s in pending]
        try:
            jobs = self.executor.map_array(run_cell, [str(self.out.resolve())] * len(pending), indices)
        except (FailedJobError, FailedSubmissionError) as err:
            lines = str(err).strip().splitlines() or ["no reason given"]
            raise ConfigError(f"sweep: --cluster slurm: the job array was not submitted: {lines[-1]}") from None
        print(f"slurm: job array {jobs[0].job_id.split('_')[0]}, {len(jobs)} tasks (files: {self.out / 'slurm'})",
              file=self.stream, flush=True)
        return jobs

    def _run_pending(self, pending: list[RunState], display: Any) -> None:
        """Submit ``pending`` as one array and follow it to its end, or cancel it when the sweep is
        interrupted."""
        if not pending:
            return
        waiting = list(zip(self._submit(pending), pending))
        while waiting and not self._interrupted:
            for job, state in list(waiting):
                self._watch(state, display)
                if job.done():
                    self._watch(state, display)
                    self._end(job, state)
                    waiting.remove((job, state))
                    display.changed(state)
            display.refresh(self.states)
            time.sleep(POLL_SECONDS)
        if self._interrupted:
            self._cancel(waiting, display)

    def _watch(self, state: RunState, display: Any) -> None:
        """A run is running once its cell has prepared its folder; then its log is followed."""
        if state.status == "pending" and (state.folder / "config.json").exists():
            state.status, state.started = "running", time.monotonic()
            display.changed(state)
        if state.status == "running":
            self._follow(state)

    def _end(self, job: Any, state: RunState) -> None:
        """Record a run whose task has ended, from the files its cell wrote, or else from how the
        task ended."""
        if visible(state.folder / "outcome.json"):
            self._write_run(state)
        elif not self._interrupted:
            write_outcome(state.folder, ERROR, f"Slurm task {job.job_id} ended ({job.state}) before its run did; "
                                               f"see {job.paths.stderr}")
            self._write_run(state)
        elif state.folder.exists():
            write_outcome(state.folder, STOPPED, f"the sweep was stopped by {self._interrupted}")
            self._write_run(state)
        else:
            self._not_run(state)

    def _cancel(self, waiting: list[tuple[Any, RunState]], display: Any) -> None:
        """Cancel every task not ended, give started cells ``STOP_GRACE`` to record their runs as
        stopped, and record every run."""
        for job, _ in waiting:
            job.cancel(check=False)
        deadline = time.monotonic() + STOP_GRACE + 5.0
        while time.monotonic() < deadline and not all(
                not state.folder.exists() or visible(state.folder / "outcome.json") or job.done()
                for job, state in waiting):
            time.sleep(POLL_SECONDS)
        for job, state in waiting:
            self._end(job, state)
            display.changed(state)


def visible(path: Path) -> bool:
    """Whether ``path`` exists, asking a shared file system afresh: an NFS client may cache a
    folder's listing, and setting the folder's mode to itself revalidates it (as submitit does)."""
    try:
        path.parent.chmod(path.parent.stat().st_mode)
    except OSError:
        pass
    return path.exists()
