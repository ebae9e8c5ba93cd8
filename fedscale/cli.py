"""The ``fedscale`` command (also ``python docker/driver.py``): submit, resume, stop, status, keys,
list, sweep, report, plot, mcp.

``submit`` with no job file runs the quickstart job that ships inside the package; ``resume
<run folder>`` (or ``submit --resume <run folder>``) continues a job from its checkpoint. Every
user error is one line on stderr and exit code 2; a job that fails exits 1 with its reason.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedscale.cloud.config_parser import DEFAULT_JOB, ConfigError, describe_keys, load_job
from fedscale.deploy import registry
from fedscale.deploy.launcher import IMPLEMENTATIONS, LaunchError, describe_recorded
from fedscale.deploy.submit import JobResult, resume, stop, submit

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _submit(args: argparse.Namespace) -> int:
    if args.resume:
        if args.job:
            raise ConfigError(f"submit: give a job file or --resume {args.resume}, not both")
        return _resume(args)
    job = load_job(args.job or str(DEFAULT_JOB))
    return _report(job.conf.identity.job_name, submit(job, plots=not args.no_plots, launcher=args.launcher or ""))


def _resume(args: argparse.Namespace) -> int:
    result = resume(Path(args.resume), plots=not args.no_plots, launcher=args.launcher or "")
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
        print(f"{record['job_name']}\tdriver pid {record['driver_pid']}\t{describe_recorded(record)}\t"
              f"{record['run_dir']}")
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


def _sweep(args: argparse.Namespace) -> int:
    from fedscale.sweep.clusters import OPTIONS, check_options, sweep_runner
    from fedscale.sweep.runner import default_out
    from fedscale.sweep.spec import from_flags, load_sweep
    if args.spec and args.strategies:
        raise ConfigError(f"sweep: give a sweep file ({args.spec}) or --strategies, not both")
    if args.spec:
        sweep = load_sweep(args.spec, seed=args.seed, seeds=args.seeds)
    elif args.strategies:
        sweep = from_flags(_names(args.strategies), _names(args.attacks), rounds=args.rounds, clients=args.clients,
                           seed=args.seed, seeds=args.seeds, base=args.base, executors=args.executors,
                           byzantine_fraction=args.byzantine_fraction, iso_time=args.iso_time,
                           wall_budget=args.wall_budget, target_metric=args.target_metric,
                           target_value=args.target_value)
    else:
        raise ConfigError("sweep: give a sweep file (.toml or .yaml grid) or --strategies")
    if args.parallel is not None and args.parallel < 1:
        raise ConfigError(f"sweep: --parallel: expected a whole number >= 1, got {args.parallel}")
    out = Path(args.out) if args.out else default_out()
    check_options(args.cluster, {flag: _given(getattr(args, flag[2:].replace("-", "_")))
                                 for flags in OPTIONS.values() for flag in flags})
    if args.render_only:
        if args.resume:
            raise ConfigError("sweep: --render-only writes every run's cell; --resume needs the sweep to follow them")
        from fedscale.sweep.kubernetes_sweep import render_folder
        print(render_folder(sweep, out, args.claim or "", args.parallel, args.namespace or "", args.image or ""))
        return 0
    runner = sweep_runner(args.cluster, sweep, out, args.parallel, args.resume, args.slurm_partition,
                          args.slurm_time, args.claim or "", args.namespace or "", args.image or "")
    where = {"slurm": " as a Slurm job array", "kubernetes": " as a Kubernetes Indexed Job"}.get(args.cluster, "")
    print(f"sweep: {len(sweep.runs)} runs{where}, {runner.parallel} at a time, into {out}", flush=True)
    from fedscale.sweep.compare import console_summary
    print("\n".join(console_summary(runner.run())))
    print(f"comparison: {out / 'comparison.md'}")
    if runner.interrupted:
        return EXIT_INTERRUPTED
    return 1 if runner.failed else 0


def _given(value: object) -> bool:
    """Whether an option that defaults to None (or a flag, to False) was given."""
    return value is not None and value is not False


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _sweep_report(args: argparse.Namespace) -> int:
    from fedscale.sweep.runner import report
    report(Path(args.sweep_dir))
    print(Path(args.sweep_dir) / "comparison.md")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from fedscale.cloud.logger.plots import write_run_plots
    for path in write_run_plots(args.run_dir):
        print(path)
    return 0


def _mcp(args: argparse.Namespace) -> int:
    from fedscale.sweep.mcp_server import main as serve
    return serve()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedscale", description="Run federated-learning simulation jobs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="run a job file to its end (default: the quickstart job)")
    p.add_argument("job", nargs="?", help="YAML job file")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the job of this run folder from its checkpoint")
    p.add_argument("--no-plots", action="store_true", help="do not draw the run's plots when it ends")
    p.add_argument("--launcher", choices=tuple(IMPLEMENTATIONS),
                   help="how the job's processes start (default: the job file's launcher / use_container, else ssh "
                        "when a host is remote, else local)")
    p.set_defaults(func=_submit)
    p = sub.add_parser("resume", help="continue a job from its run folder's checkpoint, at the round after it")
    p.add_argument("resume", metavar="run_dir")
    p.add_argument("--no-plots", action="store_true", help="do not draw the run's plots when it ends")
    p.add_argument("--launcher", choices=tuple(IMPLEMENTATIONS), help="as for submit")
    p.set_defaults(func=_resume)
    p = sub.add_parser("stop", help="stop a running job and all its processes")
    p.add_argument("job_name")
    p.set_defaults(func=_stop)
    sub.add_parser("status", help="list running jobs").set_defaults(func=_status)
    sub.add_parser("keys", help="list every job_conf key with its type, default and help").set_defaults(func=_keys)
    p = sub.add_parser("list", help="list the robust aggregators, pre-aggregators or attacks")
    p.add_argument("kind", choices=("aggregators", "preaggregators", "attacks"))
    p.set_defaults(func=_list)
    p = sub.add_parser("sweep", help="run a strategy x attack matrix (or a grid of any keys) as parallel jobs and "
                                     "rank them")
    p.add_argument("spec", nargs="?", help="sweep file: TOML ([shared], [[runs]]) or a YAML grid")
    p.add_argument("--strategies", help="comma-separated strategies (FedAvg, FedMedian, Krum, nnm+trimmed_mean, ...)")
    p.add_argument("--attacks", help="comma-separated attacks; each strategy also runs without one")
    p.add_argument("--rounds", type=int, help="rounds per run")
    p.add_argument("--clients", type=int, help="clients per round (num_participants)")
    p.add_argument("--base", default="", help="job file the runs start from (default: the quickstart job)")
    p.add_argument("--executors", type=int, default=1, help="executor processes per run (default 1)")
    p.add_argument("--byzantine-fraction", type=float, default=0.2,
                   help="fraction of Byzantine clients in attacked runs (default 0.2)")
    p.add_argument("--iso-time", type=float, help="the same virtual-time budget (s) for every run")
    p.add_argument("--wall-budget", type=float, help="stop a run after this many wall seconds")
    p.add_argument("--target-metric", help="test_accuracy or test_loss, with --target-value")
    p.add_argument("--target-value", type=float)
    p.add_argument("--parallel", type=int, help="runs at once (default: as many as the cores hold)")
    p.add_argument("--out", help="sweep folder (default out/<ISO time>-sweep)")
    p.add_argument("--seed", type=int, help="first seed (default: the base job's); run i gets seed + i")
    p.add_argument("--seeds", type=int, help="repeat every run over this many seeds (paired), for intervals")
    p.add_argument("--resume", action="store_true", help="keep runs completed in --out with the same config")
    p.add_argument("--cluster", choices=("local", "slurm", "kubernetes"), default="local",
                   help="where the runs run: local processes (default), a Slurm job array of sweep cells "
                        "(through submitit; --out on a file system the nodes share), or a Kubernetes Indexed Job "
                        "of them (--out on the volume of --claim)")
    p.add_argument("--slurm-partition", help="the Slurm partition (default: the cluster's)")
    p.add_argument("--slurm-time", type=int, metavar="MIN", help="each array task's time limit in minutes (default 60)")
    p.add_argument("--claim", metavar="NAME",
                   help="kubernetes: the PersistentVolumeClaim holding the sweep folder; --out must be where it is "
                        "mounted here, and the cells mount it at that same path")
    p.add_argument("--namespace", help="kubernetes: the cells' namespace (default: the kubeconfig context's; with "
                                       "--render-only, default)")
    p.add_argument("--image", help="kubernetes: the cells' image (default: $FEDSCALE_IMAGE, else fedscale:latest)")
    p.add_argument("--render-only", action="store_true",
                   help="kubernetes: only write plan.json and the cells' Job (kubernetes.yaml) into --out and print "
                        "the kubectl command, for a cluster this machine does not reach")
    p.set_defaults(func=_sweep)
    p = sub.add_parser("report", help="rebuild a sweep's comparison from its runs' event logs")
    p.add_argument("sweep_dir")
    p.set_defaults(func=_sweep_report)
    p = sub.add_parser("plot", help="write a run's plots (progress, clients per round, round durations) into its folder")
    p.add_argument("run_dir")
    p.set_defaults(func=_plot)
    sub.add_parser("mcp", help="serve sweep_run, sweep_status and sweep_compare as MCP tools over stdio "
                               "(needs the mcp extra)").set_defaults(func=_mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
