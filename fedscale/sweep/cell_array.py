"""A sweep's runs as an array of cells that a scheduler runs elsewhere (a Slurm job array, a
Kubernetes Indexed Job), filling the same sweep folder a local sweep does.

The sweep folder (on a file system this machine and the cluster's nodes share) gets its plan and
manifest here; each task of the array is one cell (``fedscale.sweep.cell``), which runs its run
exactly as the local runner would. This process follows the runs in their folders, each as
pending until its cell has written config.json, then through its event log, and records a run
when the scheduler says its task has ended; once every task has, ``SweepRunner`` writes the
comparison and the manifest. A scheduler is a subclass saying how tasks are submitted, when one
has ended, why one ended without its run's outcome, and how they are cancelled.

A task that ends without its run's outcome (killed before its cell could stop, out of memory, a
node lost) is recorded as ``error`` with the scheduler's reason. Ctrl-C or SIGTERM cancels every
task not ended: started runs are recorded as ``stopped``, the others as ``not_run``.
"""
from __future__ import annotations

import shutil
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from fedscale.sweep.results import ERROR, STOPPED
from fedscale.sweep.run import POLL_SECONDS, STOP_GRACE, write_outcome
from fedscale.sweep.runner import RunState, SweepRunner


class CellArrayRunner(SweepRunner, ABC):
    """``SweepRunner`` whose pending runs are cells of one array a scheduler runs (the module
    docstring); a subclass is one scheduler."""

    @abstractmethod
    def _submit(self, pending: list[RunState], indexes: list[int]) -> list[Any]:
        """Submit one cell per pending run, ``indexes`` their runs' indexes in the plan; return
        the tasks, in the order of ``pending``."""

    @abstractmethod
    def _ended(self, task: Any) -> bool:
        """Whether ``task`` has ended for good (it will not be run again)."""

    @abstractmethod
    def _lost(self, task: Any) -> str:
        """Why ``task`` ended without its run's outcome, and where to look: the run's reason."""

    @abstractmethod
    def _cancel_tasks(self, tasks: list[Any]) -> None:
        """Cancel ``tasks`` (queued or running); a running cell is asked to stop (SIGTERM)."""

    def _run_pending(self, pending: list[RunState], display: Any) -> None:
        """Submit ``pending`` as one array and follow it to its end, or cancel it when the sweep is
        interrupted. A run's folder left by an earlier sweep is removed first, so what appears
        there is this array's."""
        if not pending:
            return
        for state in pending:
            if state.folder.exists():
                shutil.rmtree(state.folder)
        index = {s.spec.run_id: i for i, s in enumerate(self.states)}
        waiting = list(zip(self._submit(pending, [index[s.spec.run_id] for s in pending]), pending))
        while waiting and not self._interrupted:
            for task, state in list(waiting):
                self._watch(state, display)
                if self._ended(task):
                    self._watch(state, display)
                    self._end(task, state)
                    waiting.remove((task, state))
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

    def _end(self, task: Any, state: RunState) -> None:
        """Record a run whose task has ended, from the files its cell wrote, or else from how the
        task ended."""
        if visible(state.folder / "outcome.json"):
            self._write_run(state)
        elif not self._interrupted:
            write_outcome(state.folder, ERROR, self._lost(task))
            self._write_run(state)
        elif state.folder.exists():
            write_outcome(state.folder, STOPPED, f"the sweep was stopped by {self._interrupted}")
            self._write_run(state)
        else:
            self._not_run(state)

    def _cancel(self, waiting: list[tuple[Any, RunState]], display: Any) -> None:
        """Cancel every task not ended, give started cells ``STOP_GRACE`` to record their runs as
        stopped, and record every run."""
        self._cancel_tasks([task for task, _ in waiting])
        deadline = time.monotonic() + STOP_GRACE + 5.0
        while time.monotonic() < deadline and not all(
                not state.folder.exists() or visible(state.folder / "outcome.json") or self._ended(task)
                for task, state in waiting):
            time.sleep(POLL_SECONDS)
        for task, state in waiting:
            self._end(task, state)
            display.changed(state)


def visible(path: Path) -> bool:
    """Whether ``path`` exists, asking a shared file system afresh: an NFS client may cache a
    folder's listing, and setting the folder's mode to itself revalidates it (as submitit does)."""
    try:
        path.parent.chmod(path.parent.stat().st_mode)
    except OSError:
        pass
    return path.exists()
