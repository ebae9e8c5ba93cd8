"""manifest.json: what a sweep ran, on what, and how each run ended, so a result can be traced
back to its code, packages, machine and spec."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("fedscale", "torch", "numpy", "grpcio", "protobuf", "pydantic", "scikit-learn", "scipy", "pyyaml",
            "matplotlib", "rich", "mcp")
ROOT = Path(__file__).resolve().parents[2]


def git_commit(folder: Path = ROOT) -> str | None:
    """The commit of the source tree the package runs from, with ``+dirty`` if it has changes;
    None outside a git checkout."""
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def host() -> dict[str, Any]:
    """CPU model and count (those this process may use), RAM, OS."""
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), "")
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu_model": model or platform.processor(), "cpus": len(os.sched_getaffinity(0)),
            "memory_gib": round(memory / 2**30, 1), "os": platform.platform(), "hostname": platform.node()}


def manifest(sweep: Any, parallel: int, states: list[Any], wall_seconds: float | None = None) -> dict[str, Any]:
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "packages": versions(),
        "host": host(),
        "parallel": parallel,
        "wall_seconds": wall_seconds,
        "spec": sweep.model_dump(),
        "runs": [{"run_id": s.spec.run_id, "status": s.status, "config_hash": s.spec.config_hash(),
                  "cores": list(s.cores)} for s in states],
    }
