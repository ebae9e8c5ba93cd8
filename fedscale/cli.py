"""The ``fedscale`` command (also ``python docker/driver.py``): submit, resume, stop, status, keys, list.

``submit`` with no job file runs the quickstart job that ships inside the package; ``resume
<run folder>`` (or ``submit --resume <run folder>``) continues a job from its checkpoint. Every
user error is one line on stderr and exit code 2; a job that fails exits 1 with its reason.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedscale.cloud.config_parser import ConfigError, describe_keys, load_job
from fedscale.deploy import registry
from fedscale.deploy.submit import JobResult, resume, stop, submit

DEFAULT_JOB = Path(__file__).resolve().parent / "jobs" / "quickstart.yml"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _submit(args: argparse.Namespace) -> int:
    if args.resume:
        if args.job:
            raise ConfigError(f"submit: give a job file or --resume {args.resume}, not both")
        return _resume(args)
    job = load_job(args.job or str(DEFAULT_JOB))
    return _report(job.conf.identity.job_name, submit(job))


def _resume(args: argparse.Namespace) -> int:
    result = resume(Path(args.resume))
    return _report(result.run_dir.parent.name, result)


def _report(job_name: str, result: JobResult) -> int:
    if result.exit_code == 0:
        print(result.run_dir)
    else:
        print(f"job {job_name} {result.status}: {result.reason} (logs: {result.run_dir})", file=sys.stderr)
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
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the job of this run folder from its checkpoint")
    p.set_defaults(func=_submit)
    p = sub.add_parser("resume", help="continue a job from its run folder's checkpoint, at the round after it")
    p.add_argument("resume", metavar="run_dir")
    p.set_defaults(func=_resume)
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
