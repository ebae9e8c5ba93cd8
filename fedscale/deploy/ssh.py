"""The ``ssh`` Launcher: executors on the job's worker hosts, started over SSH; the aggregator here.

FedScale's habit (``worker_ips``, ``auth: {ssh_user, ssh_private_key}``, ``setup_commands``)
without its failures:

- Before anything starts, every worker host is checked in parallel: reachable, its host key
  known (unknown hosts are refused, never trusted on first use), authenticated, the same Python
  and fedscale versions importable after ``setup_commands``, the job's data paths present. A
  host that fails is named in one line with the SSH error; ``min_workers`` lets a job go on
  without it.
- Each executor is started through ``python -m fedscale.deploy.remote start``: the job secret and
  TLS certificates travel on the SSH channel's stdin, never in argv, a log or job.json; the
  process leads its own process group and reports its pid and start time, which the registry
  keeps, so ``stop`` ends exactly those groups on every host.
- Executor output streams back over the channel into ``<run_dir>/executor-N.out``; their event
  logs are copied back at the end when the host does not share the run folder's file system.

The aggregator runs on this machine (forked from the job's template, as with ``local``), so
``ps_ip`` must be one of this machine's addresses that the worker hosts can reach.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from fedscale import __version__
from fedscale.cloud import commons
from fedscale.cloud.channels.tls import SERVER_ONLY
from fedscale.cloud.config_parser import ConfigError, JobSpec
from fedscale.cloud.logger.events import EventTail
from fedscale.deploy.launcher import LaunchError, wait_all
from fedscale.deploy.local import LocalLauncher, Template, is_local_host
from fedscale.deploy.remote import python_version

CONNECT_TIMEOUT = 10.0
COMMAND_TIMEOUT = 120.0
ANSWER_TIMEOUT = 60.0
DEFAULT_PORT = 22


class SshError(LaunchError):
    """A host could not be reached, authenticated or used; one line naming the host."""


@dataclass(frozen=True)
class SshTarget:
    """How to reach one host: ``auth`` first, then ``~/.ssh/config``, then SSH's defaults."""

    host: str
    address: str
    port: int
    user: str
    key_file: str
    known_hosts: str

    @classmethod
    def of(cls, host: str, auth: dict[str, Any]) -> SshTarget:
        import paramiko
        config: dict[str, Any] = {}
        user_config = Path.home() / ".ssh" / "config"
        if user_config.is_file():
            config = paramiko.SSHConfig.from_path(str(user_config)).lookup(host)
        identity = config.get("identityfile") or [""]
        return cls(host=host, address=config.get("hostname", host),
                   port=int(auth.get("ssh_port") or config.get("port") or DEFAULT_PORT),
                   user=auth.get("ssh_user") or config.get("user") or _local_user(),
                   key_file=auth.get("ssh_private_key") or os.path.expanduser(identity[0]),
                   known_hosts=auth.get("ssh_known_hosts") or str(Path.home() / ".ssh" / "known_hosts"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def connect(self) -> Any:
        """An authenticated paramiko client; any failure is an SshError naming the host."""
        import paramiko
        client = paramiko.SSHClient()
        if os.path.exists(self.known_hosts):
            client.load_host_keys(self.known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(self.address, port=self.port, username=self.user, key_filename=self.key_file or None,
                           look_for_keys=not self.key_file, allow_agent=not self.key_file, timeout=CONNECT_TIMEOUT,
                           banner_timeout=CONNECT_TIMEOUT, auth_timeout=CONNECT_TIMEOUT)
        except paramiko.BadHostKeyException:
            client.close()
            raise SshError(f"{self}: its host key differs from the one in {self.known_hosts}") from None
        except paramiko.SSHException as err:
            client.close()
            reason = str(err)
            if "not found in known_hosts" in reason:
                reason = f"its host key is not in {self.known_hosts} (ssh to it once, or add it with ssh-keyscan)"
            elif isinstance(err, paramiko.AuthenticationException):
                reason = f"authentication as {self.user!r} failed ({err})"
            raise SshError(f"{self}: {reason}") from None
        except OSError as err:
            client.close()
            causes = list(getattr(err, "errors", {}).values()) or [err]
            reason = causes[0].strerror or str(causes[0]) if isinstance(causes[0], OSError) else str(err)
            raise SshError(f"{self}: cannot connect ({reason})") from None
        return client

    def __str__(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"


def _local_user() -> str:
    import getpass
    return getpass.getuser()


def remote_command(setup_commands: Sequence[str], *args: str) -> str:
    """The shell command running ``python -m fedscale.deploy.remote args`` on a worker host: after
    ``setup_commands`` (which choose the environment) with that environment's ``python3``, else
    with this interpreter's path where the host has it, else ``python3``."""
    module = " ".join(["-m", "fedscale.deploy.remote", *map(shlex.quote, args)])
    if setup_commands:
        return " && ".join([*setup_commands, f"exec python3 {module}"])
    here = shlex.quote(sys.executable)
    return f'exec "$(command -v {here} || command -v python3)" {module}'


def run_command(client: Any, command: str, stdin: bytes = b"", timeout: float = COMMAND_TIMEOUT) -> str:
    """Run ``command`` on an open client and return its stdout; a failure raises SshError with the
    last line of its output."""
    channel = client.get_transport().open_session(timeout=CONNECT_TIMEOUT)
    channel.settimeout(timeout)
    try:
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        out, err = channel.makefile("rb").read(), channel.makefile_stderr("rb").read()
        code = channel.recv_exit_status()
    except socket.timeout:
        raise SshError(f"{command.split(' -m ')[0]}: no answer within {timeout:g} s") from None
    finally:
        channel.close()
    if code != 0:
        lines = [line for line in (err + out).decode(errors="replace").splitlines() if line.strip()]
        raise SshError(lines[-1].strip() if lines else f"exit code {code}")
    return out.decode(errors="replace")


def data_paths(job: JobSpec) -> list[str]:
    """The files and folders the job's executors read, which every worker host must have."""
    return [path for path in (job.conf.data.data_dir, job.conf.data.data_map_file) if path]


def check_host(job: JobSpec, target: SshTarget) -> str:
    """What is wrong with ``target`` (the module docstring's checks), in one line naming it; empty
    if nothing."""
    try:
        client = target.connect()
        try:
            paths = data_paths(job)
            output = run_command(client, remote_command(job.setup_commands, "check", *(f"--path={p}" for p in paths)))
        finally:
            client.close()
        found = json.loads(output.strip().splitlines()[-1])
        versions = (str(found["python"]), str(found["fedscale"]))
        missing = [path for path, present in dict(found["paths"]).items() if not present]
    except SshError as err:
        return str(err) if str(err).startswith(str(target)) else f"{target}: {err}"
    except (ValueError, IndexError, KeyError, TypeError):
        return f"{target}: its check gave no answer (is fedscale installed there?)"
    if versions != (python_version(), __version__):
        return (f"{target}: it has Python {versions[0]} with fedscale {versions[1]}, this machine Python "
                f"{python_version()} with fedscale {__version__}")
    if missing:
        return f"{target}: {missing[0]} does not exist there (the job's data must be on every worker host at the same path)"
    return ""


def _is_this_machine(address: str) -> bool:
    if is_local_host(address):
        return True
    try:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
            probe.bind((address, 0))
    except OSError as err:
        return err.errno != errno.EADDRNOTAVAIL
    return True


class RemoteProcess:
    """An executor on a worker host, seen through its SSH channel (the JobProcess protocol); its
    output is copied into ``out`` as it comes."""

    def __init__(self, channel: Any, out: Path, pid: int, start: int | None) -> None:
        self.channel, self.pid, self.start = channel, pid, start
        self._copier = threading.Thread(target=self._copy, args=(out,), daemon=True)
        self._copier.start()

    def _copy(self, out: Path) -> None:
        with open(out, "ab") as sink:
            while True:
                try:
                    chunk = self.channel.recv(65536)
                except (OSError, EOFError):
                    break
                if not chunk:
                    break
                sink.write(chunk)
                sink.flush()

    @property
    def returncode(self) -> int | None:
        if not self.channel.exit_status_ready() and not self.channel.closed:
            return None
        return self.channel.recv_exit_status() if self.channel.exit_status_ready() else -1

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"remote pid {self.pid}", timeout or 0.0)
            time.sleep(0.05)
        self._copier.join(timeout=1.0)
        return self.returncode  # type: ignore[return-value]


class RemoteHost:
    """One worker host during the job: its SSH connection and the executors started on it."""

    def __init__(self, target: SshTarget, run_dir: Path) -> None:
        import paramiko
        self.target = target
        self.client = target.connect()
        self.processes: dict[str, RemoteProcess] = {}
        self.shares_run_dir = False
        try:
            self._prepare_run_dir(run_dir)
        except (paramiko.SSHException, OSError) as err:
            self.client.close()
            raise SshError(f"{target}: cannot write the run folder {run_dir} there over SFTP ({err})") from None

    def _prepare_run_dir(self, run_dir: Path) -> None:
        """Give the host the run folder's job.json, unless it already sees this one (a shared file
        system, or this machine)."""
        local = run_dir / commons.JOB_FILE
        sftp = self.client.open_sftp()
        try:
            try:
                remote = sftp.stat(str(local))
                mine = local.stat()
                self.shares_run_dir = (remote.st_size, int(remote.st_mtime)) == (mine.st_size, int(mine.st_mtime))
            except FileNotFoundError:
                pass
            if not self.shares_run_dir:
                for folder in reversed([run_dir, *run_dir.parents]):
                    try:
                        sftp.stat(str(folder))
                    except FileNotFoundError:
                        sftp.mkdir(str(folder))
                sftp.put(str(local), str(local))
        finally:
            sftp.close()

    def start(self, job: JobSpec, executor_id: str, args: list[str], env: dict[str, str], out: Path) -> RemoteProcess:
        channel = self.client.get_transport().open_session(timeout=CONNECT_TIMEOUT)
        channel.set_combine_stderr(True)
        channel.exec_command(remote_command(job.setup_commands, "start"))
        channel.sendall((json.dumps({"program": "executor", "args": args, "env": env}) + "\n").encode())
        channel.shutdown_write()
        channel.settimeout(ANSWER_TIMEOUT)
        first = b""
        try:
            while not first.endswith(b"\n"):
                chunk = channel.recv(1)
                if not chunk:
                    break
                first += chunk
            answer = json.loads(first)
        except (ValueError, OSError):
            rest = first + channel.makefile("rb").read()
            channel.close()
            lines = [line for line in rest.decode(errors="replace").splitlines() if line.strip()]
            raise SshError(f"{self.target}: {executor_id} did not start: "
                           f"{lines[-1].strip() if lines else 'no answer'}") from None
        channel.settimeout(None)
        process = RemoteProcess(channel, out, int(answer["pid"]), answer.get("start"))
        self.processes[executor_id] = process
        return process

    def signal(self, job: JobSpec, kill: bool) -> None:
        """TERM (or KILL) the process groups of this host's live executors."""
        live = [p for p in self.processes.values() if p.poll() is None and p.start is not None]
        if live:
            stop_groups(self.client, job.setup_commands, [(p.pid, p.start) for p in live], kill)

    def fetch_logs(self, run_dir: Path) -> None:
        """Copy the executors' event logs back when the host writes them elsewhere."""
        if self.shares_run_dir:
            return
        sftp = self.client.open_sftp()
        try:
            for executor_id in self.processes:
                path = run_dir / commons.executor_log_name(executor_id)
                try:
                    sftp.get(str(path), str(path))
                except OSError:
                    pass
        finally:
            sftp.close()

    def groups(self) -> list[list[int | None]]:
        return [[p.pid, p.start] for p in self.processes.values()]


def stop_groups(client: Any, setup_commands: Sequence[str], groups: list[tuple[int, int | None]],
                kill: bool) -> None:
    """Signal process groups on a host (``remote stop``), best effort: a host gone means its
    processes are too."""
    args = [arg for pgid, start in groups if start is not None for arg in (f"--pgid={pgid}", f"--start={start}")]
    if not args:
        return
    try:
        run_command(client, remote_command(setup_commands, "stop", *args, *(["--kill"] if kill else [])), timeout=30.0)
    except SshError:
        pass


class SshLauncher:
    """The ``ssh`` Launcher (module docstring)."""

    kind: ClassVar[str] = "ssh"
    forks_here: ClassVar[bool] = True
    restarts_itself: ClassVar[bool] = False
    start_timeout: ClassVar[float] = 60.0

    def __init__(self, job: JobSpec, run_dir: Path, env: dict[str, str], template: Template | None,
                 aggregator_env: dict[str, str]) -> None:
        self.job, self.run_dir = job, run_dir
        self.local = LocalLauncher(job, run_dir, env, template, aggregator_env)
        self.remote_env = {k: v for k, v in env.items()
                           if (k.startswith("FEDSCALE_") or k == "PYTHONUNBUFFERED") and k not in SERVER_ONLY}
        targets = [SshTarget.of(worker.host, job.auth) for worker in job.workers]
        with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
            self.hosts = list(pool.map(lambda target: RemoteHost(target, run_dir), targets))
        self.placement: dict[str, RemoteHost] = dict(zip(
            job.executor_ids, (host for host, worker in zip(self.hosts, job.workers) for _ in range(worker.procs))))
        self.executors: dict[str, Any] = {}
        self._address = ""

    @property
    def aggregator(self) -> Any:
        return self.local.aggregator

    @classmethod
    def prepare(cls, job: JobSpec, note: Callable[[str], None]) -> JobSpec:
        """Check every worker host (module docstring); go on without failed ones if ``min_workers``
        allows, else refuse the job naming the first failed host."""
        if not _is_this_machine(job.ps_ip):
            raise ConfigError(f"{job.source}: ps_ip: {job.ps_ip!r} is not an address of this machine; the ssh "
                              f"launcher runs the aggregator where the driver runs")
        if is_local_host(job.ps_ip) and job.ps_ip != "0.0.0.0":
            remote = [w.host for w in job.workers if not is_local_host(w.host)]
            if remote:
                raise ConfigError(f"{job.source}: ps_ip: {job.ps_ip} cannot be reached from {remote[0]}; give this "
                                  f"machine's address on the network the worker hosts share")
        targets = [SshTarget.of(worker.host, job.auth) for worker in job.workers]
        with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
            errors = list(pool.map(lambda target: check_host(job, target), targets))
        failed = [error for error in errors if error]
        if not failed:
            return job
        required = job.deployment.min_workers or len(job.workers)
        kept = [worker for worker, error in zip(job.workers, errors) if not error]
        if len(kept) < required:
            raise ConfigError(f"{job.source}: worker_ips: host {failed[0]}"
                              + (f" ({len(failed) - 1} more failed)" if len(failed) > 1 else ""))
        for error in failed:
            note(f"going on without {error} ({len(kept)} of {len(job.workers)} hosts, min_workers "
                 f"{job.deployment.min_workers})")
        return dataclasses.replace(job, workers=tuple(kept),
                                   conf=job.conf.replace(num_executors=sum(w.procs for w in kept)))

    def start_aggregator(self, *args: str) -> Any:
        return self.local.start_aggregator(*args)

    def _aggregator_address(self, log_offset: int) -> str:
        """The address the aggregator announces (JOB_BEGIN), waiting for it to start."""
        if not self._address:
            tail = EventTail(self.run_dir / commons.AGGREGATOR_LOG, log_offset)
            deadline = time.monotonic() + self.start_timeout
            while not self._address:
                for event in tail.poll():
                    if event["tag"] == commons.JOB_BEGIN:
                        self._address = event["address"]
                if self._address or self.aggregator.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        return self._address

    def start_executor(self, executor_id: str, address: str = "", log_offset: int = 0) -> Any:
        address = address or self._aggregator_address(log_offset)
        if not address:
            process: Any = _Ended()
        else:
            host = self.placement[executor_id]
            args = ["--run-dir", str(self.run_dir), "--executor-id", executor_id, "--address", address]
            out = self.run_dir / commons.console_output_name(executor_id)
            try:
                process = host.start(self.job, executor_id, args, self.remote_env, out)
            except SshError as err:
                with open(out, "a") as sink:
                    print(err, file=sink)
                process = _Ended()
        self.executors[executor_id] = process
        return process

    def sync(self) -> None:
        """Nothing to bring while the job runs: output streams in as it comes."""

    def wait_all(self, timeout: float) -> bool:
        return wait_all([self.aggregator, *self.executors.values()], timeout)

    def terminate(self, grace: float = 3.0) -> None:
        for host in self.hosts:
            host.signal(self.job, kill=False)
        self.local.terminate(grace)
        if not self.wait_all(grace):
            for host in self.hosts:
                host.signal(self.job, kill=True)
            self.wait_all(grace)
        for host in self.hosts:
            try:
                host.fetch_logs(self.run_dir)
            finally:
                host.client.close()

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.describe(), "local": self.local.record(),
                "setup_commands": list(self.job.setup_commands),
                "hosts": [dict(host.target.to_dict(), groups=host.groups()) for host in self.hosts]}

    def describe(self) -> str:
        names = ", ".join(host.target.host for host in self.hosts)
        return f"ssh, {len(self.placement)} executors on {names}"

    @staticmethod
    def stop_recorded(record: dict[str, Any]) -> None:
        LocalLauncher.stop_recorded(record.get("local") or {})
        for host in record.get("hosts", []):
            groups = [(pgid, start) for pgid, start in host.get("groups", [])]
            target = SshTarget(**{k: v for k, v in host.items() if k != "groups"})
            try:
                client = target.connect()
            except SshError:
                continue
            try:
                stop_groups(client, record.get("setup_commands", []), groups, kill=True)
            finally:
                client.close()


class _Ended:
    """An executor that could not start (its reason is in its output file)."""

    returncode = 1

    def poll(self) -> int:
        return 1

    def wait(self, timeout: float | None = None) -> int:
        return 1
