"""Virtual time to a target accuracy under each client-selection policy, on one job.

Runs the same non-IID job with the shipped device fleet once per ``sample_mode`` (and seed),
reads the TEST_RESULT events, smooths accuracy with a moving average over ``--ma``
evaluations, and reports the virtual time at which each policy first reaches the target.
The default target follows Oort's protocol (Lai et al., OSDI 2021, Sec. 7.1): the highest
smoothed accuracy that every run of every policy reaches. Speedup = time(random) / time(policy).
A policy is ``sample_mode[:regressor][+adaptive]``: ``bliss:xgboost+adaptive`` runs Bliss with
XGBoost for g and h and time-budget adaptive training.
Usage: python benchmark/perf/time_to_accuracy.py [--job FILE] [--modes random,oort,...]
       [--seeds 1] [--targets ACC,...] [--ma 3]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fedscale.cloud import commons  # noqa: E402
from fedscale.cloud.config_parser import JobSpec, load_job  # noqa: E402
from fedscale.deploy.submit import run_to_end  # noqa: E402

DEFAULT_JOB = Path(__file__).resolve().parents[1] / "configs" / "digits" / "fleet_noniid.yml"
DEFAULT_POLICIES = ("random", "oort", "pyramidfl", "bliss:linreg+adaptive", "bliss:xgboost+adaptive",
                    "bliss:mlp+adaptive")


def policy_conf(policy: str) -> dict[str, object]:
    """job_conf changes for a policy written ``sample_mode[:regressor][+adaptive]``."""
    name, adaptive = policy.removesuffix("+adaptive"), policy.endswith("+adaptive")
    mode, _, regressor = name.partition(":")
    changes: dict[str, object] = {"sample_mode": mode, "adaptive_training": adaptive}
    if regressor:
        changes.update(g_model=regressor, h_model=regressor)
    return changes


def accuracy_curve(job: JobSpec, exp_path: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Run ``job``; return the virtual times and accuracies of its tests, and its rounds."""
    try:
        events = run_to_end(dataclasses.replace(job, exp_path=exp_path))
    except RuntimeError as err:
        raise SystemExit(f"{job.conf.selection.sample_mode}: {err}") from None
    tests = [e for e in events if e["tag"] == commons.TEST_RESULT]
    return (np.array([e["virtual_time"] for e in tests]), np.array([e["accuracy"] for e in tests]),
            events[-1]["rounds_completed"])


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (fewer at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    end = np.arange(1, len(values) + 1)
    start = np.maximum(end - window, 0)
    return (sums[end] - sums[start]) / (end - start)


def time_to(times: np.ndarray, smoothed: np.ndarray, target: float) -> float:
    reached = np.flatnonzero(smoothed >= target)
    return float(times[reached[0]]) if len(reached) else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default=str(DEFAULT_JOB))
    parser.add_argument("--modes", default=",".join(DEFAULT_POLICIES))
    parser.add_argument("--seeds", type=int, default=1, help="runs per policy, seeds 1..N")
    parser.add_argument("--targets", default="", help="comma-separated accuracies (default: the Oort-protocol "
                        "target and 98%% and 95%% of it)")
    parser.add_argument("--ma", type=int, default=3, help="moving-average window, in evaluations")
    args = parser.parse_args()
    base = load_job(args.job)
    modes = args.modes.split(",")
    curves: dict[str, list[tuple[np.ndarray, np.ndarray, int]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            for mode in modes:
                job = dataclasses.replace(base, conf=base.conf.replace(seed=seed, **policy_conf(mode)))
                times, acc, rounds = accuracy_curve(job, tmp)
                curves[mode].append((times, moving_average(acc, args.ma), rounds))
    protocol = min(s.max() for runs in curves.values() for _, s, _ in runs)
    targets = [float(t) for t in args.targets.split(",")] if args.targets else [
        protocol, round(0.98 * protocol, 4), round(0.95 * protocol, 4)]
    print(f"job {base.conf.identity.job_name}: K={base.conf.training.num_participants}, virtual-time budget "
          f"{base.conf.training.max_virtual_time / 3600:g} h, {args.seeds} seed(s); accuracy smoothed over {args.ma} "
          f"tests; Oort-protocol target {protocol:.4f} (the best every run reaches)")
    print(f"{'policy':<24}{'rounds':>7}{'final acc':>10}{'best MA':>9}" +
          "".join(f"{'h to ' + format(t, '.4f'):>14}{'speedup':>8}" for t in targets))
    hours = {m: [np.mean([time_to(t, s, target) for t, s, _ in runs]) / 3600 for target in targets]
             for m, runs in curves.items()}
    for mode, runs in curves.items():
        row = f"{mode:<24}{np.mean([n for _, _, n in runs]):>7.0f}{np.mean([s[-1] for _, s, _ in runs]):>10.4f}" \
              f"{np.mean([s.max() for _, s, _ in runs]):>9.4f}"
        for i in range(len(targets)):
            row += f"{hours[mode][i]:>14.2f}{hours.get('random', [np.nan] * len(targets))[i] / hours[mode][i]:>7.2f}x"
        print(row)


if __name__ == "__main__":
    main()
