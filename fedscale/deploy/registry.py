"""Where running jobs are recorded, so ``stop <job_name>`` can find them from another shell.

One JSON file per running job under ``$FEDSCALE_STATE_DIR`` (default
``~/.local/state/fedscale/jobs``): the driver's pid, the job's process group and run folder.
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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lookup(job_name: str) -> dict[str, Any] | None:
    """The record of a running job, or None (a record whose driver is dead counts as none)."""
    try:
        record = json.loads(_path(job_name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record if pid_alive(record["driver_pid"]) else None


def register(job_name: str, **record: Any) -> None:
    path = _path(job_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(record, job_name=job_name)))


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
