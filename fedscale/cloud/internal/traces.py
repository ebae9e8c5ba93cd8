"""The ``traces`` command that generates fleets:
``python -m fedscale.cloud.internal.traces generate --clients N --seed S --out PATH``.

File formats (and the fleet a job runs on) live in ``trace_formats``, the generator in
``fleet_generator``; the statistics behind the generated fleets are described in
``docs/device-traces.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedscale.cloud.internal.fleet_generator import generate_fleet
from fedscale.cloud.internal.trace_formats import fleet_to_json, save_fleet


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
