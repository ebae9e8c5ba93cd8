"""Everything a job builds, built once before any process starts, so a bad value is refused
with one line naming its key instead of failing inside the aggregator after the executors
joined: the device fleet (read with the safe loaders), the aggregator's port, the selector,
the server algorithm and the robust pipeline.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass

from fedscale.cloud.config.keys import ConfigError
from fedscale.cloud.config_parser import JobSpec
from fedscale.cloud.internal.client_metadata import Fleet
from fedscale.cloud.internal.trace_formats import TraceError
from fedscale.cloud.internal.traces import job_fleet


@dataclass(frozen=True)
class Preflight:
    """What the job's validation built."""

    fleet: Fleet


def preflight(job: JobSpec) -> Preflight:
    """Build the job's parts; any problem is one ConfigError naming the job file and the key."""
    try:
        _check_port(job)
        return Preflight(fleet=_fleet(job))
    except ConfigError as err:
        raise ConfigError(err.problem, err.where, err.source or job.source) from None


def _fleet(job: JobSpec) -> Fleet:
    """The device fleet, read as the aggregator will; a bad file is named by its key."""
    fleet = job.conf.fleet
    files = {"device_conf_file": fleet.device_conf_file, "device_avail_file": fleet.device_avail_file,
             "clients_file": fleet.clients_file}
    try:
        return job_fleet(fleet.clients_file, fleet.device_conf_file, fleet.device_avail_file)
    except TraceError as err:
        key = next((key for key, path in files.items() if path and str(err).startswith(path)), "")
        raise ConfigError(str(err), f"job_conf.{key}" if key else "") from None


def _check_port(job: JobSpec) -> None:
    """Refuse a fixed ``ps_port`` that another process already listens on."""
    if job.ps_port == 0:
        return {}
    with socket.socket(socket.AF_INET6 if ":" in job.ps_ip else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((job.ps_ip, job.ps_port))
        except OSError as err:
            raise ConfigError(f"cannot listen on {job.ps_ip}:{job.ps_port} ({err.strerror}); choose a free port, "
                              "or 0 for any", "ps_port") from None
