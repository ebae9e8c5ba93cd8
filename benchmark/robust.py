"""Byzantine robustness: final test accuracy of every job in a folder, against the attack-free one.

Runs each job file of the folder (default ``benchmark/configs/robust/``) once per seed
(seeds 1..N replace the file's seed), one job at a time, reads its TEST_RESULT events and
prints, per job: aggregator, attack, Byzantine updates aggregated per round (mean), final
test accuracy (mean over seeds, and min-max) and its drop, in accuracy points, from the mean
of the attack-free job (the one without an attack or Byzantine clients). Stops with the job's
reason if a job fails.
Usage: python benchmark/robust.py [--configs DIR] [--seeds 4] [--logs DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedscale.cloud import commons  # noqa: E402
from fedscale.cloud.config_parser import ConfigError, JobSpec, load_job  # noqa: E402
from fedscale.deploy.submit import run_to_end  # noqa: E402

DEFAULT_CONFIGS = Path(__file__).resolve().parent / "configs" / "robust"


def run(job: JobSpec, exp_path: str) -> tuple[float, float]:
    """Run ``job`` with its logs under ``exp_path``; return its final test accuracy and the mean
    number of Byzantine updates aggregated per round."""
    try:
        events = run_to_end(dataclasses.replace(job, exp_path=exp_path))
    except RuntimeError as err:
        raise SystemExit(f"{job.source} (seed {job.conf.training.seed}): {err}") from None
    tests = [e["accuracy"] for e in events if e["tag"] == commons.TEST_RESULT]
    byzantine = [e["byzantine_aggregated"] for e in events if e["tag"] == commons.ROUND_END]
    return tests[-1], float(np.mean(byzantine))


def attack_free(job: JobSpec) -> bool:
    """Whether ``job`` has no attack or no Byzantine clients."""
    robustness = job.conf.robustness
    return not robustness.attack or robustness.num_byzantine == 0 or (robustness.num_byzantine < 0
                                                                       and robustness.byzantine_fraction == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=str(DEFAULT_CONFIGS), help="folder of job files (*.yml)")
    parser.add_argument("--seeds", type=int, default=4, help="runs per job, seeds 1..N")
    parser.add_argument("--logs", default="", help="keep the run folders here (default: a temporary folder, "
                        "removed unless a job fails)")
    args = parser.parse_args()
    try:
        jobs = sorted((load_job(str(path)) for path in sorted(Path(args.configs).glob("*.yml"))),
                      key=lambda job: not attack_free(job))  # the attack-free job first
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    if not jobs:
        raise SystemExit(f"{args.configs}: no job files (*.yml)")
    if sum(map(attack_free, jobs)) != 1:
        raise SystemExit(f"{args.configs}: expected one attack-free job, found {sum(map(attack_free, jobs))}")
    started = time.monotonic()
    results: dict[str, list[tuple[float, float]]] = {}
    logs = args.logs or tempfile.mkdtemp(prefix="robust-")
    for job in jobs:
        name = Path(job.source).stem
        results[name] = []
        for seed in range(1, args.seeds + 1):
            results[name].append(run(dataclasses.replace(job, conf=job.conf.replace(seed=seed)), logs))
            print(f"{name} seed {seed}: accuracy {results[name][-1][0]:.4f}", file=sys.stderr, flush=True)
    if not args.logs:
        shutil.rmtree(logs)
    reference = np.mean([acc for acc, _ in results[Path(jobs[0].source).stem]])
    print(f"{len(jobs)} jobs x {args.seeds} seed(s) in {time.monotonic() - started:.0f} s; final test accuracy, "
          f"drop in points from the attack-free job ({reference:.4f})")
    print(f"{'job':<24}{'aggregator':<22}{'attack':<18}{'byz/round':>10}{'accuracy':>10}{'min-max':>15}{'drop':>7}")
    for job in jobs:
        name = Path(job.source).stem
        acc = np.array([a for a, _ in results[name]])
        byzantine = np.mean([b for _, b in results[name]])
        robustness = job.conf.robustness
        rule = robustness.aggregator + (f" f={robustness.f}" if robustness.f >= 0 else "")
        print(f"{name:<24}{rule:<22}{robustness.attack or '-':<18}{byzantine:>10.2f}{acc.mean():>10.4f}"
              f"{f'{acc.min():.3f}-{acc.max():.3f}':>15}{(reference - acc.mean()) * 100:>7.1f}")


if __name__ == "__main__":
    main()
