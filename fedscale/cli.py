"""The ``fedscale`` command (also ``python docker/driver.py``): submit, stop, status, keys, list.

``submit`` with no job file runs the quickstart job that ships inside the package. Every
user error is one line on stderr and exit code 2; a job that fails exits 1 with its reason.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedscale.cloud.config_parser import ConfigError, describe_keys, load_job
from fedscale.deploy import registry
from fedscale.deploy.submit import stop, submit

DEFAULT_JOB = Path(__file__).resolve().parent / "jobs" / "quickstart.yml"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _submit(args: argparse.Namespace) -> int:
    job = load_job(args.job or str(DEFAULT_JOB))
    result = submit(job)
    if result.exit_code == 0:
        print(result.run_dir)
    else:
        print(f"job {job.conf.identity.job_name} {result.status}: {result.reason} (logs: {result.run_dir})",
              file=sys.stderr)
    return result.exit_code


def _stop(args: argparse.Namespace) -> int:
    if not stop(args.job_name):
        print(f"no running job named {args.job_name!r}", file=sys.stderr)
        return 1
    print(f"stopped {args.job_name}")
    return 0


def _status(args: argparse.Namespace) -> int:
    jobs = registry.running()
    for record in jobs:
        print(f"{record['job_name']}\tdriver pid {record['driver_pid']}\t{record['run_dir']}")
    if not jobs:
        print("no running jobs")
    return 0


def _keys(args: argparse.Namespace) -> int:
    print(describe_keys())
    return 0


def _list(args: argparse.Namespace) -> int:
    from fedscale.robust.registry import listing
    print(listing(args.kind))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedscale", description="Run federated-learning simulation jobs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="run a job file to its end (default: the quickstart job)")
    p.add_argument("job", nargs="?", help="YAML job file")
    p.set_defaults(func=_submit)
    p = sub.add_parser("stop", help="stop a running job and all its processes")
    p.add_argument("job_name")
    p.set_defaults(func=_stop)
    sub.add_parser("status", help="list running jobs").set_defaults(func=_status)
    sub.add_parser("keys", help="list every job_conf key with its type, default and help").set_defaults(func=_keys)
    p = sub.add_parser("list", help="list the robust aggregators, pre-aggregators or attacks")
    p.add_argument("kind", choices=("aggregators", "preaggregators", "attacks"))
    p.set_defaults(func=_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
