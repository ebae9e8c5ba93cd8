"""A sweep's runs as one Slurm job array, through submitit, filling the same sweep folder a local
sweep does (``fedscale.sweep.cell_array``: how the array's cells are followed and recorded).

Each array task is one cell, ``fedscale.sweep.cell.run_cell(<sweep folder>, <run index>)``. Up to
``parallel`` tasks run at once (Slurm's array throttle; default every run), each given the cores
its run keeps busy (``cores_needed``). submitit keeps its job files and the tasks' logs in
``<out>/slurm/``; the function it runs is found by import, and nothing received from elsewhere is
unpickled by the sweep (it never reads a task's result). A task that ends without its run's
outcome is recorded as ``error`` naming the task and its log; Ctrl-C or SIGTERM cancels every
task still queued or running.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from fedscale.cloud.config.keys import ConfigError
from fedscale.sweep.cell import run_cell
from fedscale.sweep.cell_array import CellArrayRunner
from fedscale.sweep.runner import RunState
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


class SlurmSweepRunner(CellArrayRunner):
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

    def _submit(self, pending: list[RunState], indexes: list[int]) -> list[Any]:
        """One array task per pending run, the cell of its index in the sweep."""
        parameters = {"name": f"sweep-{self.out.resolve().name}", "timeout_min": self.time_min,
                      "cpus_per_task": max(s.cores_needed for s in pending),
                      "slurm_array_parallelism": self.parallel}
        if self.partition:
            parameters["slurm_partition"] = self.partition
        self.executor.update_parameters(**parameters)
        from submitit.core.utils import FailedJobError, FailedSubmissionError
        try:
            jobs = self.executor.map_array(run_cell, [str(self.out.resolve())] * len(pending), indexes)
        except (FailedJobError, FailedSubmissionError) as err:
            lines = str(err).strip().splitlines() or ["no reason given"]
            raise ConfigError(f"sweep: --cluster slurm: the job array was not submitted: {lines[-1]}") from None
        print(f"slurm: job array {jobs[0].job_id.split('_')[0]}, {len(jobs)} tasks (files: {self.out / 'slurm'})",
              file=self.stream, flush=True)
        return jobs

    def _ended(self, task: Any) -> bool:
        return task.done()

    def _lost(self, task: Any) -> str:
        return f"Slurm task {task.job_id} ended ({task.state}) before its run did; see {task.paths.stderr}"

    def _cancel_tasks(self, tasks: list[Any]) -> None:
        for job in tasks:
            job.cancel(check=False)
