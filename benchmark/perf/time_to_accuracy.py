"""Virtual time to a target accuracy under each client-selection policy, on one job.

Runs the same non-IID job with the shipped device fleet once per ``sample_mode`` (and seed),
reads the TEST_RESULT events, smooths accuracy with a moving average over ``--ma``
evaluations, and reports the virtual time at which each policy first reaches the target.
The default target follows Oort's protocol (Lai et al., OSDI 2021, Sec. 7.1): the highest
smoothed accuracy that every policy reaches. Speedup = time(random) / time(policy).
Usage: python benchmark/perf/time_to_accuracy.py [--job FILE] [--modes random,oort,pyramidfl]
       [--seeds 1] [--target ACC] [--ma 3]
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fedscale.cloud import commons  # noqa: E402
from fedscale.cloud.config_parser import JobSpec, load_job  # noqa: E402
from fedscale.cloud.logger.events import read_events  # noqa: E402
from fedscale.deploy.submit import submit  # noqa: E402

DEFAULT_JOB = Path(__file__).resolve().parents[1] / "configs" / "digits" / "fleet_noniid.yml"


def accuracy_curve(job: JobSpec, exp_path: str) -> tuple[np.ndarray, np.ndarray]:
    """Run ``job``; return the virtual times and accuracies of its tests."""
    result = submit(dataclasses.replace(job, exp_path=exp_path), out=io.StringIO(), err=io.StringIO())
    if result.exit_code != 0:
        raise SystemExit(f"{job.conf.sample_mode}: the job failed: {result.reason}")
    tests = [e for e in read_events(result.run_dir / commons.AGGREGATOR_LOG) if e["tag"] == commons.TEST_RESULT]
    return np.array([e["virtual_time"] for e in tests]), np.array([e["accuracy"] for e in tests])


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
    parser.add_argument("--modes", default="random,oort,pyramidfl")
    parser.add_argument("--seeds", type=int, default=1, help="runs per policy, seeds 1..N")
    parser.add_argument("--target", type=float, default=None)
    parser.add_argument("--ma", type=int, default=3, help="moving-average window, in evaluations")
    args = parser.parse_args()
    base = load_job(args.job)
    modes = args.modes.split(",")
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            for mode in modes:
                job = dataclasses.replace(base, conf=base.conf.replace(sample_mode=mode, seed=seed))
                times, acc = accuracy_curve(job, tmp)
                curves[mode].append((times, moving_average(acc, args.ma)))
    target = args.target if args.target is not None else min(
        max(s.max() for _, s in runs) for runs in curves.values())
    print(f"job {base.conf.job_name}: {base.conf.rounds} rounds, K={base.conf.num_participants}, "
          f"{args.seeds} seed(s); target accuracy {target:.4f} (moving average over {args.ma} tests)")
    print(f"{'policy':<12}{'final acc':>10}{'best MA':>10}{'hours to target':>17}{'speedup':>9}")
    hours = {m: np.mean([time_to(t, s, target) for t, s in runs]) / 3600 for m, runs in curves.items()}
    for mode, runs in curves.items():
        final = np.mean([s[-1] for _, s in runs])
        best = np.mean([s.max() for _, s in runs])
        speedup = hours.get("random", np.nan) / hours[mode]
        print(f"{mode:<12}{final:>10.4f}{best:>10.4f}{hours[mode]:>17.2f}{speedup:>8.2f}x")


if __name__ == "__main__":
    main()
