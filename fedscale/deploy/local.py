"""Runs a job's aggregator and executors as processes on this machine.

All of a job's processes share one process group (led by the aggregator) so that stopping the
job is one signal to the group, and each dies with the launcher (Linux parent-death signal) so
a killed driver leaves no orphan behind.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fedscale.cloud import commons

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
PR_SET_PDEATHSIG = 1


def is_local_host(host: str) -> bool:
    return host in LOCAL_HOSTS or host.startswith("127.")


def child_setup(cores: tuple[int, ...] = ()) -> Callable[[], None]:
    """What a child runs before its program: die with its parent (Linux parent-death signal), and
    keep to ``cores`` if any."""
    def setup() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if cores:
            os.sched_setaffinity(0, cores)
    return setup


class LocalLauncher:
    """Starts and stops one job's processes; their output goes to ``<run_dir>/<name>.out`` (appended
    to, so a restarted process's output follows its earlier one)."""

    def __init__(self, run_dir: Path, secret: str) -> None:
        self.run_dir = run_dir
        self.env = dict(os.environ, **{commons.SECRET_ENV: secret, "PYTHONUNBUFFERED": "1"})
        self.aggregator: subprocess.Popen | None = None
        self.executors: dict[str, subprocess.Popen] = {}

    @property
    def pgid(self) -> int | None:
        return self.aggregator.pid if self.aggregator else None

    def _spawn(self, name: str, module: str, *args: str) -> subprocess.Popen:
        out = open(self.run_dir / commons.console_output_name(name), "ab")
        group = {"process_group": 0 if self.aggregator is None else self.pgid}
        try:
            return subprocess.Popen([sys.executable, "-m", module, "--run-dir", str(self.run_dir), *args],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=self.env, preexec_fn=child_setup(), **group)
        finally:
            out.close()

    def start_aggregator(self, *args: str) -> subprocess.Popen:
        self.aggregator = self._spawn("aggregator", "fedscale.cloud.aggregation.aggregator", *args)
        return self.aggregator

    def start_executor(self, executor_id: str, address: str = "", log_offset: int = 0) -> subprocess.Popen:
        """Start an executor for the aggregator at ``address``; without one, it loads its data
        while the aggregator starts and takes the address the aggregator announces in its event
        log after byte ``log_offset``."""
        where = ("--address", address) if address else ("--log-offset", str(log_offset))
        proc = self._spawn(executor_id, "fedscale.cloud.execution.executor", "--executor-id", executor_id, *where)
        self.executors[executor_id] = proc
        return proc

    def processes(self) -> list[subprocess.Popen]:
        return ([self.aggregator] if self.aggregator else []) + list(self.executors.values())

    def wait_all(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every process to exit; True if they all did."""
        deadline = time.monotonic() + timeout
        for proc in self.processes():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def terminate(self, grace: float = 3.0) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after ``grace`` seconds."""
        if self.pgid is None or all(p.poll() is not None for p in self.processes()):
            return
        signal_group(self.pgid, signal.SIGTERM)
        if not self.wait_all(grace):
            signal_group(self.pgid, signal.SIGKILL)
            self.wait_all(grace)


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def last_line(path: Path) -> str:
    """The last non-empty line of a process's output file, for one-line error reports."""
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1].strip() if lines else ""
