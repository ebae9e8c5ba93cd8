"""Virtual time to a target accuracy under each client-selection policy, with 95% intervals.

Every policy (random, Oort, PyramidFL, Bliss) runs with and without time-budget adaptive
training, so no row mixes a selector's effect with the training path's, on the same job, the
same shipped device fleet and the same seeds (a seed fixes the data split, the model's
initialisation and the device each client is bound to, so runs with equal seeds are paired).

Protocol, following Oort's (Lai et al., OSDI 2021, Sec. 7.1) with two changes stated here:

- Accuracy is smoothed over virtual time, not over evaluations: the smoothed accuracy at a
  test is the mean of the tests in the trailing ``--window`` virtual seconds (0: no smoothing).
  A policy with shorter rounds tests more often per hour; a window counted in tests would let
  it average over less time than a slow policy.
- Time to target is the first virtual time at which the smoothed accuracy reaches the target.
  The default target is the highest smoothed accuracy that every run of every policy reaches
  (so every row has all its seeds); ``--targets`` adds others, reported only where all runs
  reach them.

Each row gives the mean over seeds with a 95% Student-t interval, and the speedup over random
adaptive-matched (random, or random with adaptive training) as the geometric mean of the
paired per-seed ratios with its 95% interval. The summary says which policies' intervals
overlap the fastest one's.

Usage: python benchmark/perf/time_to_accuracy.py [--job FILE] [--policies random,oort,...]
       [--seeds 5] [--window 1200] [--targets ACC,...] [--parallel 2] [--out table.md] [--reuse]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fedscale.cloud import commons  # noqa: E402
from fedscale.cloud.config_parser import JobSpec, load_job  # noqa: E402
from fedscale.cloud.logger.events import read_events  # noqa: E402
from fedscale.deploy.submit import run_to_end  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "digits"
DEFAULT_JOB = CONFIGS / "fleet_noniid.yml"
SELECTORS = ("random", "oort", "pyramidfl", "bliss")
ADAPTIVE = "+adaptive"
CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Run:
    """One finished run: its policy, seed, test times (virtual seconds) and accuracies, rounds."""

    policy: str
    seed: int
    times: np.ndarray
    accuracies: np.ndarray
    rounds: int


def all_policies() -> list[str]:
    """Every selector, first without and then with adaptive training."""
    return list(SELECTORS) + [s + ADAPTIVE for s in SELECTORS]


def policy_conf(policy: str) -> dict[str, object]:
    """job_conf changes for a policy written ``sample_mode[+adaptive]``."""
    return {"sample_mode": policy.removesuffix(ADAPTIVE), "adaptive_training": policy.endswith(ADAPTIVE)}


def baseline_of(policy: str) -> str:
    """The random policy on the same training path as ``policy``."""
    return "random" + (ADAPTIVE if policy.endswith(ADAPTIVE) else "")


def finished_events(exp_path: str, job_name: str) -> list[dict[str, object]] | None:
    """The events of the latest completed run of ``job_name`` under ``exp_path``, if any."""
    for log in sorted(Path(exp_path, "logs", job_name).glob(f"*/{commons.AGGREGATOR_LOG}"), reverse=True):
        events = list(read_events(log))
        if events and events[-1].get("status") == commons.STATUS_COMPLETED:
            return events
    return None


def run_policy(job: JobSpec, policy: str, seed: int, exp_path: str, reuse: bool = False) -> Run:
    """Run ``job`` under ``policy`` and ``seed`` (a job name of its own, so runs can overlap), or
    with ``reuse`` read the completed run an earlier invocation left under ``exp_path``."""
    name = f"{job.conf.identity.job_name}_{policy.replace('+', '_')}_s{seed}"
    conf = job.conf.replace(seed=seed, job_name=name, **policy_conf(policy))
    events = finished_events(exp_path, name) if reuse else None
    if events is None:
        try:
            events = run_to_end(dataclasses.replace(job, conf=conf, exp_path=exp_path))
        except RuntimeError as err:
            raise SystemExit(f"{policy}, seed {seed}: {err}") from None
    tests = [e for e in events if e["tag"] == commons.TEST_RESULT]
    return Run(policy, seed, np.array([e["virtual_time"] for e in tests]),
               np.array([e["accuracy"] for e in tests]), int(events[-1]["rounds_completed"]))


def smooth_over_time(times: np.ndarray, values: np.ndarray, window: float) -> np.ndarray:
    """At each test, the mean of the values tested in the trailing ``window`` seconds
    ``(t - window, t]`` (the test itself only, when ``window`` is 0)."""
    start = np.searchsorted(times, times - window, side="right") if window > 0 else np.arange(len(times))
    sums = np.concatenate([[0.0], np.cumsum(values)])
    end = np.arange(1, len(times) + 1)
    return (sums[end] - sums[start]) / (end - start)


def time_to_target(times: np.ndarray, smoothed: np.ndarray, target: float) -> float:
    """First virtual time at which ``smoothed`` reaches ``target`` (inf if it never does)."""
    reached = np.flatnonzero(smoothed >= target)
    return float(times[reached[0]]) if len(reached) else math.inf


def mean_interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of its 95% Student-t interval (0 for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), 0.0
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


def paired_speedup(baseline: np.ndarray, policy: np.ndarray) -> tuple[float, float, float]:
    """Geometric mean of the per-seed ratios ``baseline / policy`` with its 95% interval (lo, hi),
    from a Student-t interval on the log ratios."""
    mean, half = mean_interval(np.log(np.asarray(baseline) / np.asarray(policy)))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def table(runs: dict[str, list[Run]], window: float, targets: list[float]) -> list[str]:
    """Markdown rows: rounds, final accuracy and, per target, hours to it and the speedup."""
    header = "| policy | rounds | final accuracy |" + "".join(
        f" h to {t:.3f} | speedup to {t:.3f} |" for t in targets)
    lines = [header, "|---" * (3 + 2 * len(targets)) + "|"]
    hours = {p: {t: np.array([time_to_target(r.times, smooth_over_time(r.times, r.accuracies, window), t)
                              for r in rs]) / 3600 for t in targets} for p, rs in runs.items()}
    for policy, rs in runs.items():
        rounds, _ = mean_interval(np.array([r.rounds for r in rs]))
        final, final_half = mean_interval(np.array([r.accuracies[-1] for r in rs]))
        row = f"| {policy} | {rounds:.0f} | {final:.3f} ± {final_half:.3f} |"
        for t in targets:
            h = hours[policy][t]
            if not np.isfinite(h).all():
                row += f" {np.isfinite(h).sum()}/{len(h)} reach it | |"
                continue
            mean, half = mean_interval(h)
            row += f" {mean:.2f} ± {half:.2f} |"
            base = hours.get(baseline_of(policy), {}).get(t)
            if base is None or not np.isfinite(base).all() or len(base) != len(h):
                row += " |"
            else:
                ratio, lo, hi = paired_speedup(base, h)
                row += f" {ratio:.2f}x [{lo:.2f}, {hi:.2f}] |"
        lines.append(row)
    return lines + [""] + overlaps(hours, targets)


def overlaps(hours: dict[str, dict[float, np.ndarray]], targets: list[float]) -> list[str]:
    """For each target, the fastest policy and the policies whose 95% intervals overlap its."""
    lines = []
    for t in targets:
        finished = {p: mean_interval(h[t]) for p, h in hours.items() if np.isfinite(h[t]).all()}
        if not finished:
            continue
        best = min(finished, key=lambda p: finished[p][0])
        top = finished[best][0] + finished[best][1]
        tied = [p for p, (m, half) in finished.items() if p != best and m - half <= top]
        lines.append(f"- to {t:.3f}: fastest {best}; intervals overlapping it: {', '.join(tied) or 'none'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default=str(DEFAULT_JOB))
    parser.add_argument("--policies", default=",".join(all_policies()))
    parser.add_argument("--seeds", type=int, default=5, help="runs per policy, seeds 1..N")
    parser.add_argument("--window", type=float, default=1200.0,
                        help="trailing virtual seconds the accuracy is averaged over (0: none)")
    parser.add_argument("--targets", default="", help="extra target accuracies, comma-separated")
    parser.add_argument("--parallel", type=int, default=1, help="jobs run at once")
    parser.add_argument("--exp-path", default="/tmp/time_to_accuracy", help="where the runs' logs go")
    parser.add_argument("--out", default="", help="also write the table to this Markdown file")
    parser.add_argument("--reuse", action="store_true",
                        help="read runs already completed under --exp-path instead of running them again")
    args = parser.parse_args()
    base = load_job(args.job)
    policies = args.policies.split(",")
    unknown = [p for p in policies if p not in all_policies()]
    if unknown:
        raise SystemExit(f"--policies: unknown {unknown[0]!r}; expected some of {', '.join(all_policies())}")
    plan = [(p, s) for s in range(1, args.seeds + 1) for p in policies]
    with ProcessPoolExecutor(max_workers=args.parallel) as pool:
        finished = list(pool.map(run_policy, [base] * len(plan), [p for p, _ in plan], [s for _, s in plan],
                                 [args.exp_path] * len(plan), [args.reuse] * len(plan)))
    runs = {p: [r for r in finished if r.policy == p] for p in policies}
    common = min(smooth_over_time(r.times, r.accuracies, args.window).max() for rs in runs.values() for r in rs)
    targets = [math.floor(common * 1000) / 1000] + [float(t) for t in args.targets.split(",") if t]
    conf = base.conf
    lines = [f"job {conf.identity.job_name}: {conf.data.num_clients} clients, K={conf.training.num_participants}, "
             f"{conf.training.max_virtual_time / 3600:g} h of virtual time per run, seeds 1-{args.seeds}; accuracy "
             f"averaged over the trailing {args.window:g} virtual seconds; first target: the best every run reaches",
             ""] + table(runs, args.window, targets)
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
