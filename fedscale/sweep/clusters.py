"""Where a sweep's runs run (``fedscale sweep --cluster``): processes on this machine
(``local``, the default) or a Slurm job array of sweep cells (``slurm``). Every choice is a
``SweepRunner`` filling the same sweep folder."""
from __future__ import annotations

from pathlib import Path

from fedscale.cloud.config.keys import ConfigError
from fedscale.sweep.runner import SweepRunner
from fedscale.sweep.spec import Sweep


def sweep_runner(cluster: str, sweep: Sweep, out: Path, parallel: int | None = None, resume: bool = False,
                 slurm_partition: str | None = None, slurm_time: int | None = None) -> SweepRunner:
    """The runner of ``sweep`` into ``out`` on ``cluster``; Slurm options anywhere else, or a
    time limit under a minute, are a one-line error."""
    if cluster == "kubernetes":
        raise ConfigError("sweep: --cluster kubernetes is not available yet; use local or slurm")
    if cluster != "slurm":
        if slurm_partition or slurm_time is not None:
            raise ConfigError("sweep: --slurm-partition and --slurm-time need --cluster slurm")
        return SweepRunner(sweep, out, parallel, resume)
    from fedscale.sweep.slurm import DEFAULT_TIME_MIN, SlurmSweepRunner
    if slurm_time is not None and slurm_time < 1:
        raise ConfigError(f"sweep: --slurm-time: expected whole minutes >= 1, got {slurm_time}")
    return SlurmSweepRunner(sweep, out, parallel, resume, partition=slurm_partition or "",
                            time_min=DEFAULT_TIME_MIN if slurm_time is None else slurm_time)
