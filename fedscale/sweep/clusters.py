"""Where a sweep's runs run (``fedscale sweep --cluster``): processes on this machine (``local``,
the default), a Slurm job array of sweep cells (``slurm``) or a Kubernetes Indexed Job of them
(``kubernetes``). Every choice is a ``SweepRunner`` filling the same sweep folder."""
from __future__ import annotations

from pathlib import Path

from fedscale.cloud.config.keys import ConfigError
from fedscale.sweep.runner import SweepRunner
from fedscale.sweep.spec import Sweep

# each cluster's own options, by flag: any of them with another cluster is a one-line error
OPTIONS = {"slurm": ("--slurm-partition", "--slurm-time"),
           "kubernetes": ("--claim", "--namespace", "--image", "--render-only")}


def check_options(cluster: str, given: dict[str, bool]) -> None:
    """One line when an option ``given`` (flag -> whether it was) belongs to a cluster other than
    ``cluster``."""
    for owner, flags in OPTIONS.items():
        if owner != cluster and any(given.get(flag) for flag in flags):
            listed = ", ".join(flags[:-1]) + f" and {flags[-1]}"
            raise ConfigError(f"sweep: {listed} need --cluster {owner}")


def sweep_runner(cluster: str, sweep: Sweep, out: Path, parallel: int | None = None, resume: bool = False,
                 slurm_partition: str | None = None, slurm_time: int | None = None, claim: str = "",
                 namespace: str = "", image: str = "") -> SweepRunner:
    """The runner of ``sweep`` into ``out`` on ``cluster``, with that cluster's options (those of
    another are refused by ``check_options`` first); a time limit under a minute, or Kubernetes
    without ``claim``, is a one-line error."""
    if cluster == "kubernetes":
        from fedscale.sweep.kubernetes_sweep import KubernetesSweepRunner
        return KubernetesSweepRunner(sweep, out, parallel, resume, claim=claim, namespace=namespace, image=image)
    if cluster != "slurm":
        return SweepRunner(sweep, out, parallel, resume)
    from fedscale.sweep.slurm import DEFAULT_TIME_MIN, SlurmSweepRunner
    if slurm_time is not None and slurm_time < 1:
        raise ConfigError(f"sweep: --slurm-time: expected whole minutes >= 1, got {slurm_time}")
    return SlurmSweepRunner(sweep, out, parallel, resume, partition=slurm_partition or "",
                            time_min=DEFAULT_TIME_MIN if slurm_time is None else slurm_time)
