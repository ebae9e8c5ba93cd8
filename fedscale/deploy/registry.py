"""Where running jobs are recorded, so ``stop <job_name>`` can find them from another shell.

One JSON file per running job under ``$FEDSCALE_STATE_DIR`` (default
``~/.local/state/fedscale/jobs``): the driver's pid and start time, the run folder, and what the
job's launcher needs to find its processes again (``Launcher.record``). A record outlives its job
when the driver is killed outright (SIGKILL, the OOM killer); its pids may then belong to other
processes, so a record counts only while its driver's start time still matches, and launchers
keep their own processes' start times.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def state_dir() -> Path:
    default = Path.home() / ".local" / "state" / "fedscale" / "jobs"
    return Path(os.environ.get("FEDSCALE_STATE_DIR", default))


def _path(job_name: str) -> Path:
    return state_dir() / f"{job_name}.json"


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot, field 22 of ``/proc/<pid>/stat``);
    None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def same_process(pid: int, start: int | None) -> bool:
    """Whether ``pid`` is still the process that started at ``start``."""
    return start is not None and process_start(pid) == start


def lookup(job_name: str) -> dict[str, Any] | None:
    """The record of a running job, or None (a record whose driver is gone, or whose pid now
    belongs to another process, counts as none)."""
    try:
        record = json.loads(_path(job_name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record if same_process(record["driver_pid"], record.get("driver_start")) else None


def register(job_name: str, driver_pid: int, run_dir: str, launcher: dict[str, Any]) -> None:
    """Record a running job (``launcher``: its launcher's ``record()``)."""
    path = _path(job_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"job_name": job_name, "driver_pid": driver_pid,
                                "driver_start": process_start(driver_pid), "run_dir": run_dir,
                                "launcher": launcher}))


def unregister(job_name: str, driver_pid: int) -> None:
    """Remove the record if it is still this driver's."""
    try:
        if json.loads(_path(job_name).read_text()).get("driver_pid") == driver_pid:
            _path(job_name).unlink()
    except (FileNotFoundError, json.JSONDecodeError):
        pass


def running() -> list[dict[str, Any]]:
    out = []
    for path in sorted(state_dir().glob("*.json")):
        record = lookup(path.stem)
        if record is not None:
            out.append(record)
    return out
