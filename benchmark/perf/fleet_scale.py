"""Fleet scale: loading 1,000,000 clients, and one round's selection + simulation among them.

Prints (targets from the fleet issue in brackets):
- generating and saving a 1,000,000-client fleet (setup, not a target);
- loading it: wall time and the loading process's peak memory [< 10 s, < 1 GB];
- per selector, the mean wall time of one round's plan: online set at the virtual time,
  over-committed selection of 1.3 x 1,000 participants, simulated download/compute/upload,
  keep the 1,000 fastest [< 0.2 s per round].
Usage: python benchmark/perf/fleet_scale.py [--clients 1000000] [--participants 1000] [--rounds 20]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fedscale.cloud.client_manager import ClientManager, make_selector  # noqa: E402
from fedscale.selection.registry import SAMPLE_MODES  # noqa: E402
from fedscale.cloud.config_parser import JobConf  # noqa: E402
from fedscale.cloud.internal.fleet_generator import generate_fleet  # noqa: E402
from fedscale.cloud.internal.trace_formats import load_fleet, save_fleet  # noqa: E402

LOAD_PROBE = """
import sys, time
sys.path.insert(0, {root!r})
from fedscale.cloud.internal.trace_formats import load_fleet
started = time.perf_counter()
fleet = load_fleet({path!r})
seconds = time.perf_counter() - started
peak_kib = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(seconds, peak_kib * 1024, fleet.nbytes)
"""


def measure_load(path: str) -> tuple[float, int, int]:
    """Load time, peak resident memory (VmHWM, which exec resets) of a fresh process that only
    loads the fleet, and the fleet's own bytes."""
    out = subprocess.run([sys.executable, "-c", LOAD_PROBE.format(root=str(ROOT), path=path)],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def measure_rounds(fleet, mode: str, participants: int, rounds: int) -> float:
    """Mean seconds of ``ClientManager.plan_round`` over ``rounds`` rounds for ``mode``."""
    conf = JobConf({"sample_mode": mode, "num_participants": participants, "num_clients": fleet.num_clients,
                    "overcommitment": 1.3, "local_steps": 20, "batch_size": 20, "seed": 1})
    counts = np.random.default_rng(0).integers(20, 400, fleet.num_clients)
    manager = ClientManager(counts, fleet, 4 * 1_000_000, make_selector(conf), time_model=conf.fleet,
                            training=conf.training, adaptive=conf.adaptive)
    now, times = 0.0, []
    for r in range(1, rounds + 1):
        started = time.perf_counter()
        plan = manager.plan_round(r, now)
        times.append(time.perf_counter() - started)
        results = {int(c): SimpleNamespace(utility=1.0 + (c % 7), update_norm=1.0, local_steps=20, num_samples=100)
                   for c in plan.participants}
        manager.finish_round(plan, results)
        now += plan.duration
    return float(np.mean(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "fleet.npz")
        started = time.perf_counter()
        fleet = generate_fleet(args.clients, seed=1)
        generated = time.perf_counter() - started
        save_fleet(fleet, path)
        saved = time.perf_counter() - started - generated
        del fleet
        print(f"{args.clients} clients: generated in {generated:.1f} s, saved in {saved:.1f} s "
              f"({Path(path).stat().st_size / 2**20:.0f} MiB)")
        load_s, peak, nbytes = measure_load(path)
        print(f"load: {load_s:.2f} s, peak memory of the loading process {peak / 2**20:.0f} MiB, "
              f"fleet {nbytes / 2**20:.0f} MiB   [target < 10 s, < 1024 MiB]")
        fleet = load_fleet(path)
    for mode in SAMPLE_MODES:
        seconds = measure_rounds(fleet, mode, args.participants, args.rounds)
        print(f"{mode:<10} select + simulate {args.participants} of {args.clients}: {seconds * 1e3:7.1f} ms/round"
              f"   [target < 200 ms]")
    print(f"this process's peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
