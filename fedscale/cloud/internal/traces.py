"""The device fleet a job runs on, and the ``traces`` command that generates fleets:
``python -m fedscale.cloud.internal.traces generate --clients N --seed S --out PATH``.

File formats live in ``trace_formats``, the generator in ``fleet_generator``; the statistics
behind the generated fleets are described in ``docs/device-traces.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedscale.cloud.internal.client_metadata import Fleet
from fedscale.cloud.internal.fleet_generator import generate_fleet
from fedscale.cloud.internal.trace_formats import TraceError, fleet_to_json, load_clients, load_fedscale, save_fleet


def default_fleet_path() -> str:
    """The generated 2,000-client fleet shipped with the package (``generate --clients 2000
    --seed 1``)."""
    return str(Path(__file__).resolve().parent / "data" / "fleet_small.npz")


def job_fleet(clients_file: str, device_conf_file: str, device_avail_file: str) -> Fleet:
    """The fleet a job with these settings runs on (an empty string means unset): FedScale's
    pickles if ``device_conf_file`` is set (with ``device_avail_file``'s availability, if set),
    else ``clients_file`` (.npz/.json), else the small fleet that ships with the project.

    Raises ``TraceError`` (a ValueError) with one line naming the file and the problem for any
    file that cannot be read as that fleet; a pickle is refused, unrun, if it names anything but
    plain containers and numbers. Calling it while checking a job refuses bad traces before any
    process starts."""
    if device_conf_file:
        return load_fedscale(device_conf_file, device_avail_file or None)
    if device_avail_file:
        raise TraceError.at(device_avail_file, "device_conf_file (FedScale's device capacities) to be set as well")
    return load_clients(clients_file or default_fleet_path())


def main(argv: list[str] | None = None) -> int:
    """``python -m fedscale.cloud.internal.traces generate --clients N --seed S --out PATH``."""
    parser = argparse.ArgumentParser(prog="python -m fedscale.cloud.internal.traces")
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="write a synthetic fleet as .npz or .json")
    generate.add_argument("--clients", type=int, required=True)
    generate.add_argument("--seed", type=int, required=True)
    generate.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    fleet = generate_fleet(args.clients, args.seed)
    (fleet_to_json if Path(args.out).suffix.lower() == ".json" else save_fleet)(fleet, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
