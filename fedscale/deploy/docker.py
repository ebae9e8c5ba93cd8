"""Runs a job's aggregator and executors as Docker containers on this machine.

Each process is one ``docker run --rm --init`` of the job image (``FEDSCALE_IMAGE``, default
``fedscale``, built from docker/Dockerfile), named ``fedscale-<job>-<process>-<uid>``; the
``docker run`` client is the process the driver watches, its output the process's ``.out`` file.
A container sees the run folder at its own path, and ``data_path`` at its own path and at
FedScale's ``/FedScale/benchmark`` (the parser reads job_conf paths under it as the same paths
under data_path, so the driver lays out and checks the files the containers read). It runs as the
invoking user, so what it writes in the run folder is the user's. It is configured by the
run folder's job.json and by its environment: the variables named ``FEDSCALE_*`` (the job secret,
TLS certificates) and ``OTEL_*``, and for the aggregator alone its own (the W&B key) and
``WANDB_*``, are passed by name (``-e NAME``), so docker takes their values from its client's
environment and no command line holds them.

On the host network (the default) the job runs as the local launcher runs it: the aggregator
binds ps_ip:ps_port and executors take the address it announces in its event log. On a network
made with ``docker network create``, the aggregator listens on 0.0.0.0 inside the network, on
ps_port (29500 when 0, any port being free in its own network namespace), published on the host's
``ports[0]`` if given, and executors reach it by its container name.
"""
from __future__ import annotations

import os
import posixpath
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from fedscale.cloud import commons
from fedscale.cloud.config.deployment import CONTAINER_ROOT, HOST_NETWORK
from fedscale.cloud.config_parser import KEYS, ConfigError, JobSpec
from fedscale.deploy.launcher import listening_in_own_network, remote_hosts, wait_all
from fedscale.deploy.local import Template, child_setup
from fedscale.deploy.zygote import PROGRAMS

IMAGE_ENV = "FEDSCALE_IMAGE"
DEFAULT_IMAGE = "fedscale"
BUILD_HINT = "build it with .ci/containers, or: docker build -f docker/Dockerfile -t fedscale ."
PASSED_ENV = ("FEDSCALE_", "OTEL_")
AGGREGATOR_PASSED_ENV = ("WANDB_",)
DOCKER_TIMEOUT = 30.0
UNNAMED_NETWORKS = ("bridge", "none")


def image() -> str:
    """The image a job's containers run: ``$FEDSCALE_IMAGE``, else ``fedscale``."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def docker(*args: str, timeout: float = DOCKER_TIMEOUT, host: str = "") -> subprocess.CompletedProcess:
    """Run the docker command with ``args`` (against the daemon at ``host``, else the environment's),
    its output captured; a missing command or a client that hangs is one ConfigError."""
    env = dict(os.environ, DOCKER_HOST=host) if host else None
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=env)
    except FileNotFoundError:
        raise ConfigError("the docker launcher needs the docker command, which is not installed here") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"docker {args[0]} did not answer within {timeout:g} s") from None


def _container_paths(job: JobSpec) -> dict[str, str]:
    """The job_conf files and folders its containers read (log_path aside: the run folder is
    mounted whatever its root), by key."""
    return {name: job.conf[name] for name, spec in KEYS.items()
            if spec.path and name != "log_path" and job.conf[name]}


def _inside(path: str, folder: str) -> bool:
    return posixpath.commonpath([posixpath.normpath(path), folder]) == folder


class DockerLauncher:
    """The ``docker`` Launcher: one container per process of the job (the module docstring)."""

    kind: ClassVar[str] = "docker"
    forks_here: ClassVar[bool] = False
    restarts_itself: ClassVar[bool] = False
    start_timeout: ClassVar[float] = 60.0

    def __init__(self, job: JobSpec, run_dir: Path, env: dict[str, str], template: Template | None = None,
                 aggregator_env: dict[str, str] | None = None) -> None:
        """``env``: the environment of every process (the docker clients hold it; the containers get
        the variables the module docstring names); ``aggregator_env``: the aggregator's alone."""
        self.job = job
        self.run_dir = run_dir.absolute()  # a mount needs an absolute path; resume may give a relative one
        self.env = env
        self.aggregator_env = aggregator_env or {}
        self.image = image()
        self.network = job.deployment.container_network
        self.containers: dict[str, str] = {}
        self.aggregator: subprocess.Popen | None = None
        self.executors: dict[str, subprocess.Popen] = {}

    @classmethod
    def prepare(cls, job: JobSpec, note: Callable[[str], None]) -> JobSpec:
        """Refuse a job with a remote host, files its containers would not see, or a network that
        cannot carry it; check the daemon answers and the image is here. On a user network the job
        returned binds 0.0.0.0 on a known port (the module docstring)."""
        remote = remote_hosts(job)
        if remote:
            key, host = remote[0]
            raise ConfigError(f"{job.source}: {key}: host {host!r} is remote; containers run on this machine's "
                              f"docker (remote hosts need launcher ssh or kubernetes)")
        _check_files(job)
        version = docker("version", "--format", "{{.Server.Version}}")
        if version.returncode != 0:
            raise ConfigError(f"the Docker daemon does not answer: {_last_line(version.stderr)}")
        if docker("image", "inspect", "--format", "{{.Id}}", image()).returncode != 0:
            raise ConfigError(f"no Docker image {image()!r} on this machine; {BUILD_HINT}")
        if job.setup_commands:
            note("setup_commands are not run in containers; the image is their environment")
        network = job.deployment.container_network
        if network == HOST_NETWORK:
            if job.deployment.ports:
                note("ports are not published on container_network host: the aggregator listens on the host's "
                     "ps_port itself")
            return job
        if network in UNNAMED_NETWORKS:
            raise ConfigError(f"{job.source}: container_network: {network!r} does not resolve container names; "
                              f"use host, or a network made with: docker network create <name>")
        if docker("network", "inspect", network).returncode != 0:
            raise ConfigError(f"{job.source}: container_network: no Docker network named {network!r} "
                              f"(create it: docker network create {network})")
        return listening_in_own_network(job)

    def command(self, container: str, program: str, *args: str) -> list[str]:
        """The ``docker run`` command line of ``program`` (aggregator or executor) with ``args``, as
        the container ``container``: variables by name only, the run folder and data_path mounted."""
        aggregator = program == "aggregator"
        run_dir, data_path = str(self.run_dir), self.job.deployment.data_path
        argv = ["docker", "run", "--rm", "--init", "--name", container, "--network", self.network,
                "--user", f"{os.getuid()}:{os.getgid()}", "-v", f"{run_dir}:{run_dir}"]
        if data_path:
            argv += ["-v", f"{data_path}:{data_path}", "-v", f"{data_path}:{CONTAINER_ROOT}"]
        if aggregator and self.network != HOST_NETWORK and self.job.deployment.ports:
            argv += ["-p", f"{self.job.deployment.ports[0]}:{self.job.ps_port}"]
        for name in sorted(self._env(aggregator)):
            argv += ["-e", name]
        return [*argv, self.image, "python", "-m", PROGRAMS[program], "--run-dir", run_dir, *args]

    def _env(self, aggregator: bool) -> dict[str, str]:
        """The variables the container of the aggregator (``aggregator``) or of an executor gets."""
        prefixes = PASSED_ENV + (AGGREGATOR_PASSED_ENV if aggregator else ())
        passed = {name: value for name, value in self.env.items() if name.startswith(prefixes)}
        return {**passed, **self.aggregator_env} if aggregator else passed

    def _start(self, process: str, program: str, *args: str) -> subprocess.Popen:
        container = f"fedscale-{self.job.conf.identity.job_name}-{process}-{uuid.uuid4().hex[:8]}"
        self.containers[process] = container
        aggregator = program == "aggregator"
        with open(self.run_dir / commons.console_output_name(process), "ab") as out:
            return subprocess.Popen(self.command(container, program, *args), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=out, env={**self.env, **(self.aggregator_env if aggregator else {})},
                                    preexec_fn=child_setup(), process_group=0)

    def start_aggregator(self, *args: str) -> subprocess.Popen:
        self.aggregator = self._start("aggregator", "aggregator", *args)
        return self.aggregator

    def start_executor(self, executor_id: str, address: str = "", log_offset: int = 0) -> subprocess.Popen:
        """Start an executor's container. On the host network it finds the aggregator as a local
        executor does (``address``, else the event log after ``log_offset``); on a user network,
        always by the aggregator's container name (the address it announces is 0.0.0.0)."""
        if self.network != HOST_NETWORK:
            address = f"{self.containers['aggregator']}:{self.job.ps_port}"
        where = ("--address", address) if address else ("--log-offset", str(log_offset))
        proc = self._start(executor_id, "executor", "--executor-id", executor_id, *where)
        self.executors[executor_id] = proc
        return proc

    def _named(self) -> list[tuple[str, subprocess.Popen]]:
        return ([("aggregator", self.aggregator)] if self.aggregator else []) + list(self.executors.items())

    def processes(self) -> list[subprocess.Popen]:
        return [proc for _, proc in self._named()]

    def sync(self) -> None:
        """Nothing to bring: the containers write into the mounted run folder."""

    def wait_all(self, timeout: float) -> bool:
        return wait_all(self.processes(), timeout)

    def terminate(self, grace: float = 3.0) -> None:
        """``docker stop`` the running containers (SIGTERM, SIGKILL after ``grace`` s), then end
        their clients; ``docker rm -f`` whatever a client left behind."""
        running = [self.containers[name] for name, proc in self._named() if proc.poll() is None]
        if not running:
            return
        try:
            docker("stop", "--time", str(max(1, round(grace))), *running, timeout=grace + DOCKER_TIMEOUT)
        except ConfigError:
            pass
        if not self.wait_all(grace):
            for proc in self.processes():
                if proc.poll() is None:
                    proc.kill()
            self.stop_recorded(self.record())
            self.wait_all(grace)

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.describe(), "job": self.job.conf.identity.job_name,
                "containers": sorted(self.containers.values()), "docker_host": self.env.get("DOCKER_HOST", "")}

    def describe(self) -> str:
        return f"docker, {len(self.containers)} containers, network {self.network}"

    @staticmethod
    def stop_recorded(record: dict[str, Any]) -> None:
        """Remove the recorded containers, running or not (their names are unique to the job)."""
        names = record.get("containers") or []
        if names:
            try:
                docker("rm", "--force", *names, host=record.get("docker_host", ""))
            except ConfigError:
                pass


def _check_files(job: JobSpec) -> None:
    """Refuse a job_conf file or folder its containers would not see: outside data_path (mounted
    at its own path), or under FedScale's /FedScale/benchmark with no data_path to map it to."""
    data_path = job.deployment.data_path
    if data_path and not os.path.isdir(data_path):
        raise ConfigError(f"{job.source}: data_path: {data_path!r} is not a folder on this machine (the folder "
                          f"its containers mount at {CONTAINER_ROOT})")
    for key, path in _container_paths(job).items():
        if not (data_path and _inside(path, data_path)):
            where = f"data_path ({data_path})" if data_path else "data_path (not set)"
            raise ConfigError(f"{job.source}: job_conf.{key}: {path!r} is not visible in the job's containers; "
                              f"put it under {where}, which they mount")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no answer"
