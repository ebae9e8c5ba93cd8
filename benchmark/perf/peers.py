"""Our cost per round and at start-up against a plain PyTorch loop and pfl, measured in one run.

Two workloads, each run through our driver exactly as a user would (``docker/driver.py
submit``), then through the plain loop (``plain_loop.py``: the same clients, batches and
steps, trained one after another in one process) and, on the light one, through pfl-research
when it is installed (``pfl_runner.py``; ``pip install --no-deps -r tests/peers-requirements.txt``):

- light (``benchmark/configs/digits/light.yml``): 100 IID digits clients, 10 per round, 2 steps
  of batch 8, a test every round: the framework, not training, sets the pace. Ours runs with 1
  and with 2 executors.
- heavy (the default job, 20 steps of batch 10, two executors): training sets the pace.

Each runner is a fresh process tree timed from its launch: the median wall time between
consecutive rounds being done (a round is done when its test, if any, is; round 1 is left out
as warm-up), the time to the first round done, and the peak memory of the whole tree
(proportional set sizes, sampled every 250 ms). Every runner runs ``--repeats`` times, interleaved (these machines are
noisy); the figures are medians, and the ratios the speed targets are stated in are the
medians of each pass's ratio. Usage: python benchmark/perf/peers.py [--rounds N] [--repeats N]
[--skip-pfl]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fedscale.cli import DEFAULT_JOB  # noqa: E402
from fedscale.cloud import commons  # noqa: E402
from fedscale.cloud.logger.events import read_events  # noqa: E402
from pfl_runner import LIGHT_JOB, PFL_MISSING  # noqa: E402  (the peer's runner, beside this script)

SAMPLE_SECONDS = 0.25  # reading smaps_rollup walks page tables: often enough would slow what it measures


@dataclass
class Run:
    """One runner's measurements."""

    name: str
    round_seconds: float
    first_round_seconds: float
    peak_bytes: int


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found = []
    for task in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return found


def tree_pss(pid: int) -> int:
    """Memory of ``pid`` and all its descendants, from /proc: the sum of their proportional set
    sizes, where a page shared by k processes counts 1/k for each (so forked processes that share
    their imported code are counted once for it, as the machine spends it)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += int(next(l for l in rollup.splitlines() if l.startswith("Pss:")).split()[1]) * 1024
        except (OSError, StopIteration, IndexError, ValueError):
            continue
        todo += _children(current)
    return total


def launch(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float, int]:
    """Run ``command`` to its end; its result, launch time and the peak memory of its tree."""
    peak, done = [0], threading.Event()
    started = time.time()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            peak[0] = max(peak[0], tree_pss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    return subprocess.CompletedProcess(command, proc.returncode, out, err), started, peak[0]


def measure(name: str, done_times: list[float], started: float, peak: int) -> Run:
    """A runner's figures from the wall times at which its rounds 1..R were done."""
    gaps = np.diff(done_times[1:]) if len(done_times) > 2 else np.diff(done_times)
    return Run(name, float(np.median(gaps)), done_times[0] - started, peak)


def rounds_done(log_path: Path) -> list[float]:
    """When each round of one of our runs was done: its test's time on evaluation rounds, else
    its ROUND_END's."""
    done: dict[int, float] = {}
    for event in read_events(log_path):
        if event["tag"] in (commons.ROUND_END, commons.TEST_RESULT):
            done[event["round"]] = event["wall_time"]
    return [done[r] for r in sorted(done)]


def write_job(source: Path, folder: Path, name: str, executors: int, rounds: int | None) -> Path:
    """``source`` with ``executors`` local executors, its logs under ``folder``, and ``rounds``."""
    job = yaml.safe_load(source.read_text())
    job["worker_ips"] = [f"127.0.0.1:[{executors}]"]
    job["exp_path"] = str(folder)
    conf = [entry for entry in job["job_conf"] if not {"job_name", "rounds"} & set(entry)]
    conf += [{"job_name": name}] + ([{"rounds": rounds}] if rounds else [])
    job["job_conf"] = conf
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(job))
    return path


def run_ours(source: Path, folder: Path, name: str, executors: int, rounds: int | None) -> tuple[Run, Path]:
    """Submit the job through our driver; its figures and its aggregator log."""
    job = write_job(source, folder, name, executors, rounds)
    done, started, peak = launch([sys.executable, str(ROOT / "docker" / "driver.py"), "submit", str(job)], folder)
    if done.returncode != 0:
        raise SystemExit(f"{name}: the job failed: {done.stderr.strip().splitlines()[-1:]}")
    log = next((folder / "logs" / name).glob(f"*/{commons.AGGREGATOR_LOG}"))
    return measure(f"ours, {executors} executor{'s' * (executors > 1)}", rounds_done(log), started, peak), log


def run_script(name: str, command: list[str], folder: Path) -> Run | None:
    """Run a baseline script printing one JSON line per round done; None if it exits with
    PFL_MISSING (an optional peer that is not installed)."""
    done, started, peak = launch(command, folder)
    if done.returncode == PFL_MISSING:
        print(f"{name}: skipped ({done.stderr.strip()})")
        return None
    if done.returncode != 0:
        raise SystemExit(f"{name} failed: {done.stderr.strip()[-500:]}")
    times = [json.loads(line)["wall_time"] for line in done.stdout.splitlines() if line.strip()]
    return measure(name, times, started, peak)


def report(title: str, runs: list[Run], loop: Run) -> None:
    print(f"\n{title}")
    print(f"  {'runner':<22} {'round (median)':>15} {'vs loop':>8} {'first round done':>17} {'peak memory':>12}")
    for run in runs:
        print(f"  {run.name:<22} {run.round_seconds * 1e3:12.1f} ms {run.round_seconds / loop.round_seconds:7.2f}x "
              f"{run.first_round_seconds:15.2f} s {run.peak_bytes / 2**20:8.0f} MiB")


def one_pass(folder: Path, rounds: int, with_pfl: bool) -> dict[str, Run]:
    """Every runner once, the light workload's then the heavy one's, each plain loop right
    after the run whose clients it trains."""
    loop_script = str(ROOT / "benchmark" / "perf" / "plain_loop.py")
    runs = {}
    runs["one"], log = run_ours(LIGHT_JOB, folder, "light_1", 1, rounds)
    runs["two"], _ = run_ours(LIGHT_JOB, folder, "light_2", 2, rounds)
    light_job = write_job(LIGHT_JOB, folder, "light_loop", 1, rounds)
    runs["loop"] = run_script("plain loop", [sys.executable, loop_script, str(light_job), str(log)], folder)
    if with_pfl:
        pfl = run_script("pfl", [sys.executable, str(ROOT / "benchmark" / "perf" / "pfl_runner.py"),
                                 "--rounds", str(rounds)], folder)
        runs.update({"pfl": pfl} if pfl else {})
    runs["heavy_two"], heavy_log = run_ours(DEFAULT_JOB, folder, "heavy_2", 2, None)
    heavy_job = write_job(DEFAULT_JOB, folder, "heavy_loop", 1, None)
    runs["heavy_loop"] = run_script("plain loop", [sys.executable, loop_script, str(heavy_job), str(heavy_log)],
                                    folder)
    return runs


def median_run(runs: list[Run]) -> Run:
    """The median of each figure over repeated runs of one runner."""
    return Run(runs[0].name, float(np.median([r.round_seconds for r in runs])),
               float(np.median([r.first_round_seconds for r in runs])), int(np.median([r.peak_bytes for r in runs])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="rounds of the light workload")
    parser.add_argument("--repeats", type=int, default=3, help="passes over every runner; medians are reported")
    parser.add_argument("--skip-pfl", action="store_true", help="leave pfl out even when installed")
    args = parser.parse_args()
    passes = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.repeats):
            passes.append(one_pass(Path(tmp) / f"pass_{index}", args.rounds, not args.skip_pfl))
    runs = {key: median_run([p[key] for p in passes]) for key in passes[0]}
    light = [runs[k] for k in ("loop", "one", "two", "pfl") if k in runs]
    report(f"light: {LIGHT_JOB.relative_to(ROOT)}, {args.rounds} rounds, median of {args.repeats} passes",
           light, runs["loop"])
    report(f"heavy: the default job ({DEFAULT_JOB.relative_to(ROOT)})", [runs["heavy_loop"], runs["heavy_two"]],
           runs["heavy_loop"])

    def ratio(label: str, value: Callable[[dict[str, Run]], float], target: str, sign: str = "") -> None:
        values = [value(p) for p in passes]
        print(f"  {label:<30} {np.median(values):{sign}.2f}  (passes {min(values):{sign}.2f} to "
              f"{max(values):{sign}.2f}; {target})")

    print("\ntargets, median of the per-pass figures:")
    ratio("light, 1 executor / loop", lambda p: p["one"].round_seconds / p["loop"].round_seconds, "at most 1.15")
    ratio("light, 2 executors / 1", lambda p: p["two"].round_seconds / p["one"].round_seconds, "at most 1.00")
    ratio("heavy, 2 executors / loop", lambda p: p["heavy_two"].round_seconds / p["heavy_loop"].round_seconds,
          "at most 0.60")
    ratio("first round done - loop's (s)", lambda p: p["one"].first_round_seconds - p["loop"].first_round_seconds,
          "at most +1.00, 1 executor", sign="+")
    if "pfl" in runs:
        ratio("light, pfl / loop", lambda p: p["pfl"].round_seconds / p["loop"].round_seconds, "the peer")


if __name__ == "__main__":
    main()
