"""A sweep cell: one run of a prepared sweep folder, picked by its index, run exactly as the local
runner runs it, so a cluster's array of cells fills the same folder a local sweep does.

    python -m fedscale.sweep.cell --sweep-dir DIR [--index N] [--runs I,J,...]

``DIR`` holds the sweep's plan.json (``fedscale.sweep.plan``; run N is ``runs[N]``, from 0). The
index defaults to ``JOB_COMPLETION_INDEX`` (a Kubernetes Indexed Job's pod), else
``SLURM_ARRAY_TASK_ID`` (a Slurm array task). With ``--runs`` the index picks one of those runs
instead (cell N runs the Nth), so an array of fewer cells can run a resumed sweep's remaining
runs. The cell empties ``DIR/<run_id>/``, writes job.yml and config.json, runs ``fedscale submit
--no-plots job.yml`` (driver.out) and writes outcome.json, rounds.csv and summary.json. SIGTERM or
Ctrl-C (a cancelled task, a deleted pod), or SIGUSR2 (Slurm's warning before a task's time limit)
stops the job, and the run is recorded as ``stopped`` with the rounds it finished.

Exit code: 0 when the run ended with a result (completed, diverged, stopped at its wall budget),
1 when it failed, 130 when it was stopped, 2 for a bad folder or index (one line on stderr).
``DIR`` must be on a file system the sweep's own process sees, which writes the comparison
(``fedscale report DIR`` rebuilds it at any time).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from fedscale.cloud.config.keys import ConfigError
from fedscale.sweep.plan import planned_run
from fedscale.sweep.results import ERROR, NOT_RUN, STOPPED
from fedscale.sweep.run import EXIT_STOPPED, POLL_SECONDS, RunProcess, prepare_run

INDEX_VARIABLES = ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID")
# a cancelled task or deleted pod (SIGTERM), Ctrl-C, and the warning Slurm sends, as submitit
# asks, 90 s before a task's time limit (SIGUSR2)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
EXIT_USAGE = 2


def run_cell(sweep_dir: str, index: int) -> dict[str, Any]:
    """Run run ``index`` of the sweep planned in ``sweep_dir`` to its end and write its files;
    return its record (``fedscale.sweep.run.run_record``, plain data). A plain importable
    function, so a Slurm array task can be this call."""
    out = Path(sweep_dir)
    spec = planned_run(out, index)
    folder = out / spec.run_id
    prepare_run(spec, folder)
    process = RunProcess(spec, folder)

    def stop(signum: int, frame: Any) -> None:
        process.stop()

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        while not process.ended():
            time.sleep(POLL_SECONDS)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return process.finish()


def listed_run(runs: str, index: int) -> int:
    """The run the cell of ``index`` runs when the array's cells run ``runs`` ('1,3,4')."""
    try:
        listed = [int(run) for run in runs.split(",")]
    except ValueError:
        raise ConfigError(f"--runs {runs!r}: expected run indexes separated by commas") from None
    if not 0 <= index < len(listed):
        raise ConfigError(f"--runs {runs}: no cell {index}; the cells are 0 to {len(listed) - 1}")
    return listed[index]


def index_from_env() -> int:
    """The cell's index from ``INDEX_VARIABLES``, the first one set."""
    for name in INDEX_VARIABLES:
        value = os.environ.get(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                raise ConfigError(f"{name}={value!r}: expected a run index (a whole number)") from None
    raise ConfigError(f"no run index: give --index or set {' or '.join(INDEX_VARIABLES)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fedscale.sweep.cell",
                                     description="Run one run of a prepared sweep folder, by index.")
    parser.add_argument("--sweep-dir", required=True, help="the sweep folder (holding plan.json)")
    parser.add_argument("--index", type=int, help=f"the cell's index from 0, its run's unless --runs (default: "
                                                f"${' or $'.join(INDEX_VARIABLES)})")
    parser.add_argument("--runs", help="the runs of the array's cells, by index ('1,3,4'): the cell's index picks one")
    args = parser.parse_args(argv)
    try:
        index = index_from_env() if args.index is None else args.index
        record = run_cell(args.sweep_dir, listed_run(args.runs, index) if args.runs else index)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    status, reason = record["status"], record["reason"]
    print(f"{Path(args.sweep_dir) / record['run_id']}: {status}" + (f" ({reason})" if reason else ""))
    return EXIT_STOPPED if status == STOPPED else 1 if status in (ERROR, NOT_RUN) else 0


if __name__ == "__main__":
    sys.exit(main())
