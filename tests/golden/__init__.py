"""Golden event logs: whole jobs whose logs must not change unless a change means them to.

Each ``<name>.yml`` here (and the default job, ``default``) is run through the CLI and its event
logs are compared line by line with ``<name>/*.jsonl``. Values that measure the machine rather
than the simulation (wall times, compute seconds, the port and the run folder) are removed
first; everything else (selections, virtual times, losses, accuracies, the resolved
configuration) must match, floats to a relative 1e-5 (torch's float32 kernels differ in
their last bits between CPU instruction sets; on one machine a job gives the same bits). A change that alters behaviour on purpose re-records them
with ``python -m tests.golden.record`` and says why in its commit.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
JOBS = ("default", "oort", "pyramidfl", "bliss_adaptive", "byzantine", "label_flip")
MACHINE_KEYS = frozenset({"wall_time", "wall_seconds", "compute_seconds", "address", "port", "run_dir"})
RUN_SPECIFIC_CONFIG = frozenset({"time_stamp"})


def normalise(event: dict[str, Any], folder: Path) -> str:
    """One event as a canonical JSON line without machine measurements or run-specific paths.
    An executor's join index is the order in which the processes happened to connect."""
    dropped = MACHINE_KEYS | ({"index"} if event.get("tag") == "EXECUTOR_JOINED" else set())
    kept = {key: value for key, value in event.items() if key not in dropped}
    if isinstance(kept.get("config"), dict):
        kept["config"] = {k: v for k, v in kept["config"].items() if k not in RUN_SPECIFIC_CONFIG}
    return json.dumps(kept, sort_keys=True).replace(str(folder), "<run>")


def run_job(name: str, folder: Path) -> dict[str, list[str]]:
    """Run golden job ``name`` through the CLI in ``folder``; its normalised logs by file name."""
    from tests.jobs import driver_env

    folder.mkdir(parents=True, exist_ok=True)
    args = [] if name == "default" else [str(HERE / f"{name}.yml")]
    done = subprocess.run([sys.executable, str(ROOT / "docker" / "driver.py"), "submit", *args], cwd=folder,
                          env=driver_env(folder), capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"golden job {name} failed: {done.stderr.strip()}")
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    return {path.name: _joins_sorted([normalise(json.loads(line), folder)
                                      for line in path.read_text().splitlines() if line])
            for path in sorted(run_dir.glob("*.jsonl"))}


def _joins_sorted(lines: list[str]) -> list[str]:
    """The lines with each run of EXECUTOR_JOINED events in a fixed order (executors race to join)."""
    ordered: list[str] = []
    joins: list[str] = []
    for line in lines:
        if '"tag": "EXECUTOR_JOINED"' in line:
            joins.append(line)
            continue
        ordered += sorted(joins) + [line]
        joins = []
    return ordered + sorted(joins)


def recorded(name: str) -> dict[str, list[str]]:
    """The recorded normalised logs of golden job ``name``."""
    return {path.name: path.read_text().splitlines() for path in sorted((HERE / name).glob("*.jsonl"))}
