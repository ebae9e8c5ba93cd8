"""Kill and resume: a job whose aggregator is killed mid-run and resumed logs what an uninterrupted run logs.

For each job file (default: the quickstart job) the script runs the job to its end, then runs it
again, kills its aggregator with SIGKILL once round K + 1 has begun (``--kill-after K``, default
a third of the rounds), resumes it with ``driver.py resume <run folder>``, and compares the two
aggregator logs' ROUND_BEGIN, ROUND_END and TEST_RESULT events (selections, virtual times,
metrics) without their wall-clock fields. Equal lists mean no round was lost or repeated and
the resumed rounds chose, timed and scored exactly as the uninterrupted ones. Prints one line
per job and exits 1 if any pair differs.
Usage: python benchmark/kill_resume.py [job.yml ...] [--kill-after K] [--logs DIR]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fedscale.cloud import commons  # noqa: E402
from fedscale.cloud.config_parser import load_job  # noqa: E402
from fedscale.cloud.logger.events import EventTail, read_events  # noqa: E402
from fedscale.cli import DEFAULT_JOB  # noqa: E402
from fedscale.deploy import registry  # noqa: E402

DRIVER = ROOT / "docker" / "driver.py"
ROUND_TAGS = frozenset({commons.ROUND_BEGIN, commons.ROUND_END, commons.TEST_RESULT})
WALL_CLOCK_KEYS = frozenset({"wall_time", "wall_seconds", "compute_seconds"})
TIMEOUT = 600.0
FLOAT_TOLERANCE = 1e-5


def round_events(log: Path) -> list[str]:
    """The log's ROUND_BEGIN, ROUND_END and TEST_RESULT events as canonical JSON lines without
    wall-clock fields."""
    return [json.dumps({k: v for k, v in event.items() if k not in WALL_CLOCK_KEYS}, sort_keys=True)
            for event in read_events(log) if event["tag"] in ROUND_TAGS]


def same_value(want: Any, have: Any) -> bool:
    """Equal, floats to ``FLOAT_TOLERANCE`` (relative): a job gives the same bits on one machine,
    but torch's float32 kernels differ in their last bits between CPU instruction sets, so logs
    recorded on another machine match only that closely."""
    if isinstance(want, float) or isinstance(have, float):
        return (isinstance(want, (int, float)) and isinstance(have, (int, float))
                and math.isclose(want, have, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE))
    if isinstance(want, dict) and isinstance(have, dict):
        return want.keys() == have.keys() and all(same_value(want[k], have[k]) for k in want)
    if isinstance(want, list) and isinstance(have, list):
        return len(want) == len(have) and all(map(same_value, want, have))
    return want == have


def differing_keys(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(want) | set(have) if not same_value(want.get(k), have.get(k)))


def first_difference(want: list[str], have: list[str]) -> str | None:
    """Where two event lists first differ (``same_value``), in one line; None if they match."""
    for number, (a, b) in enumerate(zip(want, have), 1):
        x, y = json.loads(a), json.loads(b)
        keys = differing_keys(x, y)
        if keys:
            return f"event {number} ({x['tag']} of round {x['round']}) differs in {', '.join(keys)}"
    if len(want) != len(have):
        return f"{len(have)} round events, the uninterrupted run has {len(want)}"
    return None


def _driver(*args: str) -> list[str]:
    return [sys.executable, str(DRIVER), *args]


def _env() -> dict[str, str]:
    """The environment of the jobs: this checkout's code first."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))


def run_uninterrupted(job_file: Path, folder: Path) -> Path:
    """Run the job to its end from ``folder``; its run folder."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(_driver("submit", str(job_file)), cwd=folder, env=_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{job_file}: the uninterrupted run failed: {done.stderr.strip()}")
    return Path(done.stdout.strip().splitlines()[-1])


def run_killed_and_resumed(job_file: Path, folder: Path, kill_after: int) -> tuple[Path, int]:
    """Run the job from ``folder``, SIGKILL its aggregator once round ``kill_after + 1`` has begun,
    then resume it to its end; its run folder and the round it resumed after."""
    folder.mkdir(parents=True, exist_ok=True)
    driver = subprocess.Popen(_driver("submit", str(job_file)), cwd=folder, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        run_dir = Path(driver.stdout.readline().strip().split(": run folder ", 1)[1])
        _wait_for_round(run_dir / commons.AGGREGATOR_LOG, kill_after + 1)
        record = registry.lookup(run_dir.parent.name)
        if record is None:
            raise RuntimeError(f"{job_file}: the job is not registered as running")
        os.kill(record["launcher"]["pgid"], signal.SIGKILL)  # the template: the job's processes die with it
        driver.communicate(timeout=TIMEOUT)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    resumed = subprocess.run(_driver("resume", str(run_dir)), cwd=folder, env=_env(), capture_output=True, text=True,
                             timeout=TIMEOUT)
    if resumed.returncode != 0:
        raise RuntimeError(f"{job_file}: the resumed run failed: {resumed.stderr.strip()}")
    begins = [e for e in read_events(run_dir / commons.AGGREGATOR_LOG) if e["tag"] == commons.JOB_BEGIN]
    return run_dir, begins[-1]["resumed_from"]


def _wait_for_round(log: Path, round_index: int) -> None:
    """Block until ``log`` shows ROUND_BEGIN of ``round_index``; fail if the job ends first."""
    tail, deadline = EventTail(log), time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for event in tail.poll():
            if event["tag"] == commons.ROUND_BEGIN and event["round"] == round_index:
                return
            if event["tag"] == commons.JOB_END:
                raise RuntimeError(f"{log}: the job ended ({event['status']}) before round {round_index}")
        time.sleep(0.02)
    raise RuntimeError(f"{log}: round {round_index} did not begin within {TIMEOUT:g} s")


def check(job_file: Path, folder: Path, kill_after: int | None) -> tuple[bool, str]:
    """Run ``job_file`` both ways under ``folder``; whether the logs match, and a one-line report."""
    rounds = load_job(str(job_file)).conf.training.rounds
    kill_after = max(1, rounds // 3) if kill_after is None else kill_after
    if not 1 <= kill_after < rounds:
        raise ValueError(f"--kill-after must be between 1 and {rounds - 1} for {job_file}, got {kill_after}")
    reference = run_uninterrupted(job_file, folder / "uninterrupted")
    resumed, after = run_killed_and_resumed(job_file, folder / "killed", kill_after)
    want = round_events(reference / commons.AGGREGATOR_LOG)
    difference = first_difference(want, round_events(resumed / commons.AGGREGATOR_LOG))
    verdict = "match" if difference is None else f"DIFFER: {difference}"
    return difference is None, (f"{job_file.name}: killed in round {kill_after + 1}, resumed after round {after}; "
                                f"{len(want)} round events {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("jobs", nargs="*", type=Path, help="job files (default: the quickstart job)")
    parser.add_argument("--kill-after", type=int, help="kill once this round has ended (default: a third of the rounds)")
    parser.add_argument("--logs", type=Path, help="folder for the runs' logs (default: a temporary folder)")
    args = parser.parse_args(argv)
    root = args.logs or Path(tempfile.mkdtemp(prefix="kill_resume_"))
    results: list[bool] = []
    for index, job_file in enumerate(args.jobs or [DEFAULT_JOB]):
        matched, line = check(job_file.resolve(), root / f"{index}_{job_file.stem}", args.kill_after)
        print(line, flush=True)
        results.append(matched)
    print(f"logs under {root}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
