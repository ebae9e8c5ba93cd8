"""A job file's deployment keys: where its processes run, and how.

The host section of a job file says where the job runs; everything under ``job_conf`` says
what it computes, so the same job moves from a laptop to SSH hosts, containers or a cluster by
changing this section alone. FedScale's container keys are read as FedScale writes them
(``use_container: docker|k8s``, ``container_network``, ``ports``, ``data_path``,
``num_aggregators``, a top-level ``num_executors``), with ``launcher`` naming the mode directly
and ``min_workers`` letting an SSH job start without hosts that fail their checks.
"""
from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fedscale.cloud.config.keys import ConfigError, KeySpec, show

LAUNCHERS = ("local", "ssh", "docker", "kubernetes")
CONTAINER_LAUNCHERS = {"docker": "docker", "k8s": "kubernetes", "kubernetes": "kubernetes"}
HOST_NETWORK = "host"
CONTAINER_ROOT = "/FedScale/benchmark"

_LAUNCHER = KeySpec("launcher", str, "", "How the job's processes start: local, ssh, docker or kubernetes; empty: "
                    "from use_container, else ssh when a host is remote, else local.", choices=("", *LAUNCHERS))
_USE_CONTAINER = KeySpec("use_container", str, "", "FedScale's container mode: docker or k8s.",
                         choices=("", *CONTAINER_LAUNCHERS))
_NETWORK = KeySpec("container_network", str, HOST_NETWORK, "Docker network of the job's containers; 'host' shares "
                   "the host's network.")
_DATA_PATH = KeySpec("data_path", str, "", f"Host folder mounted at {CONTAINER_ROOT} in the job's containers.",
                     path=True)
_AGGREGATORS = KeySpec("num_aggregators", int, 1, "Aggregator processes; one.", choices=(1,))
_MIN_WORKERS = KeySpec("min_workers", int, 0, "Worker hosts that must pass their checks for an SSH job to start; "
                       "0: all of them.", ge=0)
_PORT = KeySpec("ports", int, 0, "A container port.", ge=1, le=65535)

KEYS = ("launcher", "use_container", "container_network", "ports", "data_path", "num_aggregators", "min_workers")


@dataclass(frozen=True)
class Deployment:
    """Where and how a job's processes run (the module docstring)."""

    launcher: str = ""
    use_container: str = ""
    container_network: str = HOST_NETWORK
    ports: tuple[int, ...] = ()
    data_path: str = ""
    num_aggregators: int = 1
    min_workers: int = 0

    def mode(self, any_remote: bool) -> str:
        """The launcher this job runs with: ``launcher`` if set, else its container mode, else ssh when
        a host is remote (``any_remote``), else local."""
        if self.launcher:
            return self.launcher
        if self.use_container:
            return CONTAINER_LAUNCHERS[self.use_container]
        return "ssh" if any_remote else "local"

    def host_path(self, path: Any) -> Any:
        """For a docker or kubernetes job with a data_path, a job_conf path under CONTAINER_ROOT
        (FedScale's mount of data_path) as the same path under data_path, so that the driver checks
        and lays out on this machine the files its containers see (they mount data_path at its own
        path too); any other value is returned as it is."""
        if self.mode(False) not in ("docker", "kubernetes") or not self.data_path or not isinstance(path, str):
            return path
        normal = posixpath.normpath(path)
        if not normal.startswith("/") or posixpath.commonpath([normal, CONTAINER_ROOT]) != CONTAINER_ROOT:
            return path
        return posixpath.normpath(posixpath.join(self.data_path, posixpath.relpath(normal, CONTAINER_ROOT)))

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in self.__dict__.items()}


def parse_deployment(top: Mapping[str, Any], num_executors: int) -> Deployment:
    """The deployment keys of a job file's top level (absent keys take their defaults)."""
    values = {spec.name: spec.parse(top[spec.name], spec.name)
              for spec in (_LAUNCHER, _USE_CONTAINER, _NETWORK, _DATA_PATH, _AGGREGATORS, _MIN_WORKERS)
              if top.get(spec.name) is not None}
    deployment = Deployment(**values, ports=_parse_ports(top.get("ports"), num_executors))
    container = CONTAINER_LAUNCHERS.get(deployment.use_container)
    if container and deployment.launcher and deployment.launcher != container:
        raise ConfigError(f"expected {container!r} or nothing with use_container {deployment.use_container!r}, "
                          f"got {deployment.launcher!r}", "launcher")
    if not deployment.container_network.strip():
        raise ConfigError("expected a Docker network name, or 'host'", "container_network")
    return deployment


def _parse_ports(section: Any, num_executors: int) -> tuple[int, ...]:
    """``ports``: FedScale's [aggregator, executor 1, executor 2, ...] container ports."""
    if section is None or section == []:
        return ()
    if not isinstance(section, list):
        raise ConfigError(f"expected a list of ports [aggregator, executor 1, ...], got {show(section)}", "ports")
    ports = tuple(_PORT.parse(port, f"ports[{index}]") for index, port in enumerate(section))
    if len(ports) not in (1, 1 + num_executors):
        raise ConfigError(f"expected 1 or {1 + num_executors} ports (the aggregator's, then one per executor of "
                          f"worker_ips), got {len(ports)}", "ports")
    return ports
