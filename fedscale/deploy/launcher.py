"""The Launcher protocol: how a job's aggregator and executors start, are watched and end.

``submit``, ``stop``, ``status``, the registry and the progress display are written against this
protocol alone; each way of running a job implements it: ``local`` (processes forked on this
machine), ``ssh`` (executors on other hosts, started over SSH), ``docker`` (one container per
process) and ``kubernetes`` (a Job and an Indexed Job on a cluster). Whatever the launcher, the
aggregator's event log and every process's output end up in the run folder on this machine,
where the driver follows them.

A launcher also says, as JSON, what it needs to find its processes again (``record``), so that
``stop`` from another shell ends a job whose driver cannot (``stop_recorded``); records carry
process start times so a reused pid is never signalled.
"""
from __future__ import annotations

import dataclasses
import importlib
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from fedscale.cloud.config_parser import KEYS, ConfigError, JobSpec

if TYPE_CHECKING:
    from fedscale.deploy.local import Template

IMPLEMENTATIONS = {
    "local": "fedscale.deploy.local:LocalLauncher",
    "ssh": "fedscale.deploy.ssh:SshLauncher",
    "docker": "fedscale.deploy.docker:DockerLauncher",
    "kubernetes": "fedscale.deploy.kubernetes:KubernetesLauncher",
}


class JobProcess(Protocol):
    """One of a job's processes as the driver watches it (the part of ``subprocess.Popen`` it uses)."""

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class Launcher(Protocol):
    """Starts, watches and ends one job's processes; their output lands in ``run_dir``.

    ``forks_here``: whether the job's processes (or some) are forked on this machine from the
    job's template process, which the driver then starts before the job's checks.
    ``restarts_itself``: whether the platform restarts a failed executor itself (a cluster's
    retries, up to ``executor_restarts``), so that the driver does not. ``start_timeout``: the
    seconds the aggregator may take to start (a cluster may first pull an image). A launcher is
    built as ``Launcher(job, run_dir, env, template, aggregator_env)``: ``env`` is the
    environment of every process of the job (its secret, TLS certificates), ``aggregator_env``
    what the aggregator alone gets (a W&B key); neither may reach a command line or a file.
    """

    kind: ClassVar[str]
    forks_here: ClassVar[bool]
    restarts_itself: ClassVar[bool]
    start_timeout: ClassVar[float]
    run_dir: Path
    aggregator: JobProcess | None
    executors: dict[str, JobProcess]

    def __init__(self, job: JobSpec, run_dir: Path, env: dict[str, str], template: Template | None,
                 aggregator_env: dict[str, str]) -> None: ...

    @classmethod
    def prepare(cls, job: JobSpec, note: Callable[[str], None]) -> JobSpec:
        """Check, before anything starts, what this launcher needs (hosts reachable, images
        present...), saying what is worth knowing through ``note``; a problem is one ConfigError.
        Returns the job to run (an SSH job may go on without hosts that failed, ``min_workers``)."""

    def start_aggregator(self, *args: str) -> JobProcess:
        """Start the aggregator with the extra arguments ``args`` (``--resume``)."""

    def start_executor(self, executor_id: str, address: str = "", log_offset: int = 0) -> JobProcess:
        """Start (or restart) an executor for the aggregator at ``address``; without one, it takes
        the address the aggregator announces in its event log after byte ``log_offset``."""

    def sync(self) -> None:
        """Bring what the processes wrote elsewhere (event log, output) into the run folder; called
        on every poll of the driver, and once more at the end."""

    def wait_all(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every process to exit; True if they all did."""

    def terminate(self, grace: float = 3.0) -> None:
        """End every process of the job, forcibly after ``grace`` s; once is enough."""

    def record(self) -> dict[str, Any]:
        """What ``stop_recorded`` needs to end the job's processes from another shell (JSON)."""

    def describe(self) -> str:
        """Where the job runs, for ``status`` (one line)."""

    @staticmethod
    def stop_recorded(record: dict[str, Any]) -> None:
        """End the processes that ``record`` (an earlier ``record()``) names, from any process."""


class LaunchError(OSError):
    """The job's processes could not be started (a host, a daemon, a broken install); one line."""


def wait_all(processes: Iterable[JobProcess | None], timeout: float) -> bool:
    """Wait up to ``timeout`` s in all for each of ``processes`` to exit; True if they all did."""
    deadline = time.monotonic() + timeout
    for process in processes:
        if process is None:
            continue
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
    return True


def launcher_class(kind: str) -> type[Launcher]:
    """The launcher named ``kind`` (imported on first use: each brings its own dependencies)."""
    module, name = IMPLEMENTATIONS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def job_mode(job: JobSpec, override: str = "") -> str:
    """The launcher a job runs with: ``override`` (``--launcher``), else the job's own choice."""
    if override and override not in IMPLEMENTATIONS:
        raise ConfigError(f"--launcher: expected one of {', '.join(IMPLEMENTATIONS)}, got {override!r}")
    return override or job.deployment.mode(any(key == "worker_ips" for key, _ in remote_hosts(job)))


ANY_ADDRESS = "0.0.0.0"


def remote_hosts(job: JobSpec) -> list[tuple[str, str]]:
    """The job's hosts other than this machine, with the key naming each (ps_ip, worker_ips)."""
    from fedscale.deploy.local import is_local_host
    hosts = [("ps_ip", job.ps_ip), *(("worker_ips", worker.host) for worker in job.workers)]
    return [(key, host) for key, host in hosts if not is_local_host(host)]


def leaves_machine(job: JobSpec, kind: str) -> bool:
    """Whether the job's gRPC traffic leaves this machine (a remote host, or a cluster's network),
    so that it must be encrypted."""
    return kind == "kubernetes" or bool(remote_hosts(job))


def listening_in_own_network(job: JobSpec) -> JobSpec:
    """``job`` with its aggregator on every interface of a network of its own (a container's, a
    pod's), on a fixed port: ps_port 0 becomes the default port, every port there being free."""
    port = job.ps_port or KEYS["ps_port"].default
    return dataclasses.replace(job, ps_ip=ANY_ADDRESS, ps_port=port,
                               conf=job.conf.replace(ps_ip=ANY_ADDRESS, ps_port=port))


def stop_recorded(record: dict[str, Any]) -> None:
    """End the processes a registry record names (its driver is gone or did not stop them)."""
    launcher = record.get("launcher") or {}
    kind = launcher.get("kind")
    if kind in IMPLEMENTATIONS:
        launcher_class(kind).stop_recorded(launcher)


def describe_recorded(record: dict[str, Any]) -> str:
    """A registry record's launcher in one line, for ``status``."""
    launcher = record.get("launcher") or {}
    return str(launcher.get("where") or launcher.get("kind", "local"))
