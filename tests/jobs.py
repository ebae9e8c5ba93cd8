"""Helpers for tests that run real jobs: job files, the driver as a real process, event logs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "docker" / "driver.py"

SMALL_JOB = {
    "job_name": "small", "data_set": "digits", "partition": "iid", "num_clients": 20, "model": "mlp",
    "rounds": 4, "num_participants": 6, "local_steps": 5, "batch_size": 10, "learning_rate": 0.05,
    "eval_interval": 2, "executor_timeout": 3.0, "heartbeat_interval": 0.5,
    "in_process_executor": False,  # every executor a process, for the tests that stop, kill or inspect them
}


def manager_settings(conf: Any) -> dict[str, Any]:
    """The components of a JobConf that ClientManager reads, as its keyword arguments."""
    return {"time_model": conf.fleet, "training": conf.training, "adaptive": conf.adaptive}


def write_uniform_fleet(folder: Path, num_devices: int = 50) -> Path:
    """A fleet of always-available devices whose speeds differ slightly (distinct finish times)."""
    devices = [{"id": i + 1, "computation": 20.0 + i, "communication": 10_000.0} for i in range(num_devices)]
    path = folder / "fleet.json"
    path.write_text(json.dumps(devices))
    return path


def write_job(folder: Path, executors: int = 2, name: str = "job.yml", **conf: Any) -> Path:
    """A job file in ``folder`` writing its logs there: SMALL_JOB on an always-available fleet,
    updated with ``conf``."""
    settings = {**SMALL_JOB, "clients_file": str(write_uniform_fleet(folder)), **conf}
    job = {"ps_ip": "127.0.0.1", "ps_port": 0, "worker_ips": [f"127.0.0.1:[{executors}]"],
           "exp_path": str(folder), "job_conf": [{k: v} for k, v in settings.items()]}
    path = folder / name
    path.write_text(yaml.safe_dump(job))
    return path


def driver_env(folder: Path) -> dict[str, str]:
    return dict(os.environ, FEDSCALE_STATE_DIR=str(folder / "state"), PYTHONPATH=str(ROOT))


def run_driver(folder: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DRIVER), *args], cwd=folder, env=driver_env(folder),
                          capture_output=True, text=True, timeout=timeout)


def start_driver(folder: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(DRIVER), *args], cwd=folder, env=driver_env(folder),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_dirs(folder: Path, job_name: str = "small") -> list[Path]:
    return sorted((folder / "logs" / job_name).glob("*")) if (folder / "logs" / job_name).exists() else []


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def wait_for_event(path: Path, tag: str, timeout: float = 60, **match: Any) -> dict[str, Any]:
    """Poll the event log at ``path`` until an event with ``tag`` (and the given fields) appears."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for event in events(path):
                if event["tag"] == tag and all(event.get(k) == v for k, v in match.items()):
                    return event
        time.sleep(0.05)
    raise AssertionError(f"no {tag} {match} in {path} within {timeout} s")


def wait_for_run_dir(folder: Path, job_name: str = "small", timeout: float = 30) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dirs = run_dirs(folder, job_name)
        if dirs:
            return dirs[-1]
        time.sleep(0.05)
    raise AssertionError("no run folder appeared")


def job_pids(run_dir: Path) -> dict[int, str]:
    """Live processes whose command line names ``run_dir``: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = next(l for l in (entry / "status").read_text().splitlines() if l.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if str(run_dir) in cmdline and "zombie" not in state:
            found[int(entry.name)] = cmdline
    return found


def pid_of(run_dir: Path, needle: str) -> int:
    matches = [pid for pid, cmd in job_pids(run_dir).items() if needle in cmd]
    assert matches, f"no process of {run_dir} matching {needle!r}"
    return matches[0]


def wait_until_gone(run_dir: Path, timeout: float) -> float:
    """Seconds until no process of ``run_dir`` is left; fail after ``timeout``."""
    started = time.monotonic()
    while job_pids(run_dir):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"processes left after {timeout} s: {job_pids(run_dir)}")
        time.sleep(0.05)
    return time.monotonic() - started


# a sweep of two short runs (FedAvg and FedMedian, 2 rounds of 3 steps, a test each round)
TWO_RUN_SWEEP = """
[shared]
rounds = 2
eval_interval = 1
local_steps = 3
executors = 1

[[runs]]
name = "FedAvg"
strategy = "FedAvg"

[[runs]]
name = "FedMedian"
strategy = "FedMedian"
"""


EVENT_DOCS = ROOT / "docs" / "events.md"
_JSON_TYPES = {"int": (int,), "float": (int, float, type(None)), "str": (str,), "bool": (bool,), "list": (list,),
               "dict": (dict,), "null": (type(None),)}


def documented_events() -> dict[str, dict[str, tuple[type, ...]]]:
    """docs/events.md as {tag: {key: accepted Python types}}; "" holds the keys of every line."""
    tags: dict[str, dict[str, tuple[type, ...]]] = {}
    current = None
    for line in EVENT_DOCS.read_text().splitlines():
        if line.startswith("## "):
            current = "" if line == "## Every line" else line[3:].strip()
            tags[current] = {}
        elif current is not None and line.startswith("| `"):
            key, kind = (cell.strip() for cell in line.strip("|").split("|")[:2])
            tags[current][key.strip("`")] = sum((_JSON_TYPES[k.strip()] for k in kind.split(" or ")), ())
    return tags


def check_documented(event: dict[str, Any], docs: dict[str, dict[str, tuple[type, ...]]]) -> None:
    """``event`` has every key of every line, and each of its keys is documented for its tag with
    the type it holds (bool is not an int here)."""
    assert set(docs[""]) <= set(event), f"missing common keys: {event}"
    assert event["tag"] in docs, f"undocumented tag {event['tag']!r}"
    allowed = {**docs[""], **docs[event["tag"]]}
    for key, value in event.items():
        assert key in allowed, f"{event['tag']}: key {key!r} is not in docs/events.md"
        assert isinstance(value, allowed[key]) and not (isinstance(value, bool) and bool not in allowed[key]), \
            f"{event['tag']}: {key}={value!r} is not of the documented type"


def interrupt_once_runs_started(sweep_dir: Path, runs: int) -> None:
    """Ctrl-C this process (from a thread) once ``runs`` runs of the sweep in ``sweep_dir`` have
    started logging, as a user stopping a sweep would."""
    def interrupt() -> None:
        deadline = time.monotonic() + 120
        while len(list(sweep_dir.glob("*/logs/*/*/aggregator.jsonl"))) < runs and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
