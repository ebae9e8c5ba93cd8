"""What running a sweep's runs side by side costs against running one of them alone.

Runs ``sweep --strategies FedAvg,FedMedian --rounds N`` through the driver as a user would,
then each of its two jobs alone through ``submit`` (their job.yml, as the sweep wrote it), and
prints the sweep's wall time divided by the slower single run's wall time (each timed from
launch to exit; ``--repeats`` passes interleaved, medians). 1.0 means the second run came for
free; 2.0 means the sweep was no faster than running the jobs one after another.
Usage: python benchmark/perf/sweep_speedup.py [--rounds 5] [--repeats 3]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DRIVER = Path(__file__).resolve().parents[2] / "docker" / "driver.py"
STRATEGIES = ("FedAvg", "FedMedian")


def timed(*args: str) -> float:
    """Wall seconds of one driver command, which must succeed."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(DRIVER), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"driver {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")
    return time.perf_counter() - started


def one_pass(rounds: int, folder: Path) -> tuple[float, float]:
    """(the sweep's wall time, the slower single run's)."""
    out = folder / "sweep"
    sweep = timed("sweep", "--strategies", ",".join(STRATEGIES), "--rounds", str(rounds), "--out", str(out))
    singles = [timed("submit", str(job)) for job in sorted(out.glob("*/job.yml"))]
    return sweep, max(singles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    passes = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            sweep, single = one_pass(args.rounds, Path(folder))
        passes.append((sweep, single))
        print(f"pass {i + 1}: sweep of {len(STRATEGIES)} runs {sweep:.2f} s, slower single run {single:.2f} s, "
              f"ratio {sweep / single:.2f}", flush=True)
    sweeps, singles = np.array(passes).T
    ratios = sweeps / singles
    print(f"sweep / slower single run: {np.median(ratios):.2f} (passes {ratios.min():.2f}-{ratios.max():.2f}; "
          f"median sweep {np.median(sweeps):.2f} s, single {np.median(singles):.2f} s; target <= 1.3 on 2 cores)")


if __name__ == "__main__":
    main()
