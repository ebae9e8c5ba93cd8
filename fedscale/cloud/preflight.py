"""Everything a job builds, built once before any process starts, so a bad value is refused
with one line naming its key instead of failing inside the aggregator after the executors
joined: the device fleet (read with the safe loaders), the aggregator's port, the clients'
sample counts (where a data map file, a data set's files or the filter_less..filter_more bounds
can decide whether num_participants clients are eligible), the selector, the server algorithm, and (for a job with Byzantine clients or a robust rule) the threat model
with its robust pipeline, which is run once on a synthetic round of ``num_participants`` rows
(its expected share of them Byzantine) so that an attack or a defence that cannot work at that
size is refused here. A job without either does not import torch here, so submitting one
starts fast; nor does one whose data needs no reading (digits split over num_clients, the
default filters). ``needs_torch`` says which jobs do: the driver runs their checks as
``python -m fedscale.cloud.preflight`` forked from the job's template process, which has
imported torch already.
"""
from __future__ import annotations

import argparse
import itertools
import socket
import sys
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedscale.cloud.aggregation.server_algorithms import ServerAlgorithm, make_server_algorithm
from fedscale.cloud.client_manager import eligible_clients, make_selector
from fedscale.cloud.config.components import RobustnessConfig
from fedscale.cloud.config.keys import ConfigError
from fedscale.cloud.config_parser import JobSpec
from fedscale.cloud.internal.client_metadata import Fleet
from fedscale.cloud.internal.trace_formats import TraceError, job_fleet
from fedscale.dataloaders.catalog import DATA_DIR_CONTENTS, TRAINING_SET_SIZES
from fedscale.selection.base import Selector

if TYPE_CHECKING:
    from fedscale.cloud.aggregation.threat_model import ThreatModel

SYNTHETIC_WIDTH = 16


@dataclass(frozen=True)
class Preflight:
    """What the job's validation built."""

    fleet: Fleet
    selector: Selector
    server_algorithm: ServerAlgorithm
    threat: ThreatModel | None


def preflight(job: JobSpec) -> Preflight:
    """Build the job's parts; any problem is one ConfigError naming the job file and the key."""
    try:
        _check_port(job)
        _check_clients(job)
        return Preflight(fleet=_fleet(job), selector=_selector(job),
                         server_algorithm=make_server_algorithm(job.conf), threat=_threat(job))
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


def _check_clients(job: JobSpec) -> None:
    """Refuse a job whose data cannot be split as asked, or leaves fewer eligible clients than
    num_participants. A digits job split over num_clients with filters no narrower than 1 to the
    training set's size needs no reading: each of its clients holds between those."""
    if not _reads_data(job):
        return
    conf = job.conf
    fleet, participants = conf.fleet, conf.training.num_participants
    counts = _sample_counts(job)
    eligible = len(eligible_clients(counts, fleet))
    if eligible >= participants:
        return
    if eligible == len(counts):
        raise ConfigError(f"expected at most the {len(counts)} clients of the data, got {participants}",
                          "job_conf.num_participants")
    key = "filter_less" if (counts < max(fleet.filter_less, 1)).any() else "filter_more"
    raise ConfigError(f"leaves {eligible} of {len(counts)} clients holding {fleet.filter_less} to {fleet.filter_more} "
                      f"samples; expected at least num_participants ({participants})", f"job_conf.{key}")


def _reads_data(job: JobSpec) -> bool:
    """Whether checking the clients needs the data read: not for digits split over num_clients
    with filters no narrower than 1 to the training set's size. A data set in data_dir is always
    read, if only to find its files missing or bad before any process starts."""
    data, fleet = job.conf.data, job.conf.fleet
    size = TRAINING_SET_SIZES.get(data.data_set)
    return (bool(data.data_map_file) or data.data_set in DATA_DIR_CONTENTS or size is None
            or fleet.filter_less > 1 or fleet.filter_more < size)


def needs_torch(job: JobSpec) -> bool:
    """Whether ``preflight(job)`` imports torch (to read the data or run the threat model)."""
    return _reads_data(job) or job.conf.robustness != RobustnessConfig()


def _sample_counts(job: JobSpec) -> np.ndarray:
    """Each client's training samples, as the executors will split the data; a problem is named by
    the key whose value it is, else by the key that chose the data (the loaders import torch, hence
    only here)."""
    from fedscale.dataloaders.dataset import DataError
    from fedscale.dataloaders.federated import client_sample_counts
    data = job.conf.data
    try:
        return client_sample_counts(data, job.conf.training.seed)
    except DataError as err:
        key = err.key or ("data_map_file" if data.data_map_file
                          else "data_dir" if data.data_set in DATA_DIR_CONTENTS else "data_set")
        raise ConfigError(str(err), f"job_conf.{key}") from None


def _selector(job: JobSpec) -> Selector:
    """The selector, built as the aggregator will; its configuration was validated with the job's,
    so what can still fail is importing its dependencies."""
    conf = job.conf
    try:
        return make_selector(conf)
    except ImportError as err:
        raise ConfigError(f"{conf.selection.sample_mode!r} cannot be built here: {err}", "job_conf.sample_mode") from None


def _threat(job: JobSpec) -> ThreatModel | None:
    """The threat model on ``num_clients`` clients (a data map file may make the real count
    differ), run once on a synthetic round; None for a job with neither Byzantine clients nor a
    robust rule, where nothing can fail."""
    conf = job.conf
    if conf.robustness == RobustnessConfig():
        return None
    import torch

    from fedscale.cloud.aggregation.threat_model import ThreatModel, expected_byzantine
    participants, num_clients = conf.training.num_participants, conf.data.num_clients
    try:
        threat = ThreatModel(conf.robustness, conf.training.seed, participants, num_clients)
        byzantine = sorted(threat.byzantine)[:expected_byzantine(len(threat.byzantine), num_clients, participants)]
        honest = itertools.islice((c for c in range(num_clients) if c not in threat.byzantine),
                                  participants - len(byzantine))
        clients = byzantine + list(honest)
        rows = torch.randn(len(clients), SYNTHETIC_WIDTH, generator=torch.Generator().manual_seed(0),
                           dtype=torch.float64)
        threat.aggregate(1, clients, threat.forge(1, clients, rows), torch.ones(len(clients), dtype=torch.float64))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return threat


def _check_port(job: JobSpec) -> None:
    """Refuse a fixed ``ps_port`` that another process already listens on."""
    if job.ps_port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in job.ps_ip else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((job.ps_ip, job.ps_port))
        except OSError as err:
            raise ConfigError(f"cannot listen on {job.ps_ip}:{job.ps_port} ({err.strerror}); choose a free port, "
                              "or 0 for any", "ps_port") from None


def main(argv: list[str] | None = None) -> int:
    """Check the job saved in ``--run-dir``: exit 0, or 2 with its one-line error on stderr."""
    parser = argparse.ArgumentParser(description="Check a job before it starts (run by the driver).")
    parser.add_argument("--run-dir", required=True, help="a folder holding the job's job.json")
    args = parser.parse_args(argv)
    try:
        preflight(JobSpec.read(Path(args.run_dir)))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
