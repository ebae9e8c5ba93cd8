"""Runs a job's aggregator and executors as processes on this machine.

They are forked from the job's template process (``fedscale.deploy.zygote``), which imports their
code once. All of a job's processes share one process group (led by the template) so that
stopping the job is one signal to the group, and each dies with its parent (Linux parent-death
signal) so a killed driver leaves no orphan behind.
"""
from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar

from fedscale.cloud import commons
from fedscale.cloud.config_parser import ConfigError, JobSpec
from fedscale.deploy.launcher import LaunchError, remote_hosts, wait_all
from fedscale.deploy.registry import process_start

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


class TemplateError(LaunchError):
    """The job's template process ended before it could start a program (a broken install); one line."""


def process_env(secret: str) -> dict[str, str]:
    """The environment of a job's processes: this one's, with the job secret (credentials travel
    in the environment, never on a command line)."""
    return dict(os.environ, **{commons.SECRET_ENV: secret, "PYTHONUNBUFFERED": "1"})


class Template:
    """The launcher's side of a job's template process: asks it to fork a program, and learns from
    its answers when each child ended."""

    def __init__(self, job_folder: Path, env: dict[str, str]) -> None:
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "fedscale.deploy.zygote", "--job-folder", str(job_folder)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, env=env,
                                     preexec_fn=child_setup(), process_group=0)
        self.exit_codes: dict[int, int] = {}
        self._started: deque[int] = deque()
        self._pending = b""
        self.ended = False

    def spawn(self, program: str, args: list[str], out: Path, title: str,
              env: dict[str, str] | None = None) -> ForkedProcess:
        """Fork ``program`` (aggregator, executor or preflight) with ``args``, its output appended to
        ``out``, ``title`` as its command line in ``ps`` and ``env`` added to its environment."""
        request = {"program": program, "args": args, "out": str(out), "title": title, "env": env or {}}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.ended = True
        while not self._started and not self.ended:
            self.pump(None)
        if not self._started:
            reason = last_line(self.errors)
            raise TemplateError(f"the job's template process ended (exit code {self.proc.wait()}) before "
                                f"starting the {program}" + (f": {reason}" if reason else ""))
        return ForkedProcess(self, self._started.popleft())

    def pump(self, timeout: float | None) -> None:
        """Read the template's answers, waiting up to ``timeout`` s (None: until one comes)."""
        if self.ended:  # its children are dying with it: callers poll their pids
            time.sleep(min(0.05, 0.05 if timeout is None else timeout))
            return
        stdout: IO[bytes] = self.proc.stdout  # type: ignore[assignment]
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            return
        chunk = os.read(stdout.fileno(), 65536)
        if not chunk:
            self.ended = True  # its children die with it
            return
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            answer = json.loads(line)
            if "started" in answer:
                self._started.append(answer["started"])
            else:
                self.exit_codes[answer["exited"]] = answer["code"]

    def close(self, grace: float = 5.0) -> None:
        """End the template (its stdin closes; whatever it forked dies with it) and reap it, killing
        it after ``grace`` seconds; once is enough."""
        if self.errors.closed:
            return
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()  # type: ignore[union-attr]
        self.errors.close()
        self.ended = True


class ForkedProcess:
    """A process the template forked, with the part of ``subprocess.Popen``'s interface the driver
    uses."""

    def __init__(self, template: Template, pid: int) -> None:
        self.template, self.pid = template, pid

    @property
    def returncode(self) -> int | None:
        """As Popen's; for a child the template could not report on (it ended first), None while the
        child lives on, then minus the parent-death signal that ended it."""
        code = self.template.exit_codes.get(self.pid)
        if code is not None or not self.template.ended:
            return code
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return -signal.SIGTERM
        return None

    def poll(self) -> int | None:
        self.template.pump(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            self.template.pump(remaining)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class LocalLauncher:
    """The ``local`` Launcher: one job's processes on this machine; their output goes to
    ``<run_dir>/<name>.out`` (appended to, so a restarted process's output follows its earlier one)."""

    kind: ClassVar[str] = "local"
    forks_here: ClassVar[bool] = True
    restarts_itself: ClassVar[bool] = False
    start_timeout: ClassVar[float] = 60.0

    def __init__(self, job: JobSpec, run_dir: Path, env: dict[str, str], template: Template | None = None,
                 aggregator_env: dict[str, str] | None = None) -> None:
        """``template``: the job's template if it was started already (with ``env``); otherwise one
        starts with ``env`` when the first process does. ``aggregator_env``: what the aggregator
        alone gets (the job's W&B key)."""
        self.run_dir = run_dir
        self.env = env
        self.template = template
        self.aggregator_env = aggregator_env or {}
        self.aggregator: ForkedProcess | None = None
        self.executors: dict[str, ForkedProcess] = {}

    @classmethod
    def prepare(cls, job: JobSpec, note: Callable[[str], None]) -> JobSpec:
        """Refuse a job with a host other than this machine (it needs the ssh launcher); its
        ``executor-1`` runs in the aggregator's process unless ``in_process_executor`` is off."""
        remote = remote_hosts(job)
        if remote:
            key, host = remote[0]
            what = "executors" if key == "worker_ips" else "the aggregator"
            raise ConfigError(f"{job.source}: {key}: host {host!r} is remote; the local launcher runs {what} on "
                              f"this machine (set launcher: ssh, or use 127.0.0.1)")
        if job.setup_commands:
            note("setup_commands are not run for local executors; they use this Python environment")
        return dataclasses.replace(job, in_process=job.conf.cluster.in_process_executor)

    @property
    def pgid(self) -> int | None:
        return self.template.proc.pid if self.template else None

    def _spawn(self, name: str, program: str, *args: str) -> ForkedProcess:
        if self.template is None:
            self.template = Template(self.run_dir.parent, self.env)
        return self.template.spawn(program, ["--run-dir", str(self.run_dir), *args],
                                   self.run_dir / commons.console_output_name(name), f"fedscale {name} {self.run_dir}",
                                   self.aggregator_env if program == "aggregator" else None)

    def start_aggregator(self, *args: str) -> ForkedProcess:
        self.aggregator = self._spawn("aggregator", "aggregator", *args)
        return self.aggregator

    def start_executor(self, executor_id: str, address: str = "", log_offset: int = 0) -> ForkedProcess:
        """Start an executor for the aggregator at ``address``; without one, it loads its data
        while the aggregator starts and takes the address the aggregator announces in its event
        log after byte ``log_offset``."""
        where = ("--address", address) if address else ("--log-offset", str(log_offset))
        proc = self._spawn(executor_id, "executor", "--executor-id", executor_id, *where)
        self.executors[executor_id] = proc
        return proc

    def processes(self) -> list[ForkedProcess]:
        return ([self.aggregator] if self.aggregator else []) + list(self.executors.values())

    def sync(self) -> None:
        """Nothing to bring: the processes write into the run folder."""

    def record(self) -> dict[str, Any]:
        pgid = self.pgid
        return {"kind": self.kind, "where": self.describe(), "pgid": pgid,
                "pgid_start": process_start(pgid) if pgid else None}

    def describe(self) -> str:
        return f"local, process group {self.pgid}"

    @staticmethod
    def stop_recorded(record: dict[str, Any]) -> None:
        """Kill the recorded process group, unless its leader is now another process (a group id is
        not reused while any member of the group lives, so a gone leader is safe too)."""
        pgid = record.get("pgid")
        if pgid:
            start = process_start(pgid)
            if start is None or start == record.get("pgid_start"):
                signal_group(pgid, signal.SIGKILL)

    def wait_all(self, timeout: float) -> bool:
        return wait_all(self.processes(), timeout)

    def terminate(self, grace: float = 3.0) -> None:
        """SIGTERM the whole group, SIGKILL whatever is left after ``grace`` seconds, and end the
        template."""
        if self.template is None:
            return
        if any(p.poll() is None for p in self.processes()):
            signal_group(self.template.proc.pid, signal.SIGTERM)
            if not self.wait_all(grace):
                signal_group(self.template.proc.pid, signal.SIGKILL)
                self.wait_all(grace)
        self.template.close()


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def last_line(output: Path | IO[bytes]) -> str:
    """The last non-empty line of a process's output (its file, or an open binary file read from
    the start), for one-line error reports."""
    try:
        if isinstance(output, Path):
            text = output.read_text(errors="replace")
        else:
            output.seek(0)
            text = output.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""
