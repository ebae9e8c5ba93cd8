"""The docker launcher.

Without Docker: FedScale's container job file parses, and the ``docker run`` command lines the
launcher would run for it (network, mounts, published port, variables by name only) are right.
With Docker (marker ``containers``; .ci/containers starts a daemon, builds the image and runs
them): real jobs submitted through the driver run their aggregator and executors in containers,
to their end on the host network and on a user network, and ``stop`` from another shell ends one
with no container left; the secret is on no command line; the run folder's files are the user's.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedscale.cloud import commons
from fedscale.cloud.config_parser import ConfigError, load_job
from fedscale.cloud.config.deployment import CONTAINER_ROOT, Deployment
from fedscale.deploy import docker as docker_launcher
from fedscale.deploy.docker import DockerLauncher
from fedscale.deploy.launcher import Launcher
from tests.fedscale_examples import FEDSCALE_DOCKER, on_loopback
from tests.jobs import ROOT, events, job_pids, run_driver, run_dirs, start_driver, wait_for_event, \
    wait_for_run_dir, wait_until_gone, write_job

# its hosts on this machine, and a data set and model this tool has
SECRET = "5e" * 32
ENV = {"PATH": os.environ["PATH"], commons.SECRET_ENV: SECRET, "FEDSCALE_TLS_CA": "-----BEGIN CERTIFICATE-----",
       "OTEL_TRACES_EXPORTER": "console", "UNRELATED": "not passed"}
AGGREGATOR_ENV = {"WANDB_API_KEY": "wandb-key-value"}


class RecordedPopen:
    """Stands for ``subprocess.Popen``: records the command line and environment, runs nothing."""

    started: list[RecordedPopen] = []

    def __init__(self, args: list[str], env: dict[str, str], **kwargs: Any) -> None:
        self.args, self.env, self.returncode = args, env, None
        RecordedPopen.started.append(self)

    def poll(self) -> None:
        return None


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The docker command answering every check, and processes recorded rather than started;
    yields the docker commands asked for."""
    asked: list[tuple[str, ...]] = []

    def answer(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        asked.append(args)
        return subprocess.CompletedProcess(["docker", *args], 0, "", "")

    RecordedPopen.started = []
    monkeypatch.setattr(docker_launcher, "docker", answer)
    monkeypatch.setattr(subprocess, "Popen", RecordedPopen)
    return asked


@pytest.fixture
def fedscale_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """FedScale's docker job file on loopback with digits and mlp, $FEDSCALE_HOME a folder here."""
    (tmp_path / "fedscale" / "benchmark").mkdir(parents=True)
    monkeypatch.setenv("FEDSCALE_HOME", str(tmp_path / "fedscale"))
    text = on_loopback(FEDSCALE_DOCKER, data_set="digits", model="mlp")
    path = tmp_path / "dry_run_docker.yml"
    path.write_text(text)
    return path


def values_of(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_docker_launcher_has_every_member_of_the_launcher_protocol() -> None:
    class_vars = [name for name, kind in Launcher.__annotations__.items() if str(kind).startswith("ClassVar")]
    methods = [name for name, value in vars(Launcher).items()
               if not name.startswith("_") and (callable(value) or isinstance(value, (classmethod, staticmethod)))]
    assert class_vars and methods
    assert [name for name in class_vars + methods if not hasattr(DockerLauncher, name)] == []


def test_fedscale_docker_job_parses_with_container_paths_on_data_path(fedscale_job: Path, tmp_path: Path) -> None:
    job = load_job(str(fedscale_job))
    data_path = str(tmp_path / "fedscale" / "benchmark")
    assert job.deployment == Deployment(use_container="docker", container_network="fedscale-net",
                                        ports=(20010, 20011, 20011), data_path=data_path)
    assert [(w.host, w.procs) for w in job.workers] == [("127.0.0.1", 1), ("127.0.0.2", 1)]
    assert job.log_root == data_path
    assert job.conf.data.data_dir == f"{data_path}/dataset/data"


def test_launcher_runs_fedscale_docker_job_on_its_network_with_variables_by_name(
        fedscale_job: Path, tmp_path: Path, no_docker: list[tuple[str, ...]]) -> None:
    notes: list[str] = []
    job = DockerLauncher.prepare(load_job(str(fedscale_job)), notes.append)
    assert ("network", "inspect", "fedscale-net") in no_docker
    assert (job.ps_ip, job.ps_port, job.conf.cluster.ps_ip) == ("0.0.0.0", 29500, "0.0.0.0")
    assert notes == []
    run_dir, data_path = tmp_path / "run", job.deployment.data_path
    run_dir.mkdir()
    launcher = DockerLauncher(job, run_dir, ENV, None, AGGREGATOR_ENV)
    launcher.start_aggregator()
    for index in (1, 2):
        launcher.start_executor(f"executor-{index}", log_offset=0)
    aggregator, *executors = RecordedPopen.started
    name = values_of(aggregator.args, "--name")[0]
    assert re.fullmatch(r"fedscale-dryrun_docker-aggregator-[0-9a-f]{8}", name)
    assert aggregator.args == [
        "docker", "run", "--rm", "--init", "--name", name, "--network", "fedscale-net",
        "--user", f"{os.getuid()}:{os.getgid()}", "-v", f"{run_dir}:{run_dir}", "-v", f"{data_path}:{data_path}",
        "-v", f"{data_path}:{CONTAINER_ROOT}", "-p", "20010:29500", "-e", "FEDSCALE_JOB_SECRET",
        "-e", "FEDSCALE_TLS_CA", "-e", "OTEL_TRACES_EXPORTER", "-e", "WANDB_API_KEY", docker_launcher.image(),
        "python", "-m", "fedscale.cloud.aggregation.aggregator", "--run-dir", str(run_dir)]
    assert aggregator.env["WANDB_API_KEY"] == "wandb-key-value" and aggregator.env[commons.SECRET_ENV] == SECRET
    for index, executor in enumerate(executors, 1):
        argv = executor.args
        assert values_of(argv, "--network") == ["fedscale-net"] and "-p" not in argv
        assert values_of(argv, "-e") == ["FEDSCALE_JOB_SECRET", "FEDSCALE_TLS_CA", "OTEL_TRACES_EXPORTER"]
        assert argv[-6:] == ["--run-dir", str(run_dir), "--executor-id", f"executor-{index}",
                             "--address", f"{name}:29500"]
        assert "WANDB_API_KEY" not in executor.env and executor.env[commons.SECRET_ENV] == SECRET
    for process in RecordedPopen.started:
        assert not any(value in arg for arg in process.args for value in (SECRET, "BEGIN", "wandb-key-value"))
    record = launcher.record()
    assert record["containers"] == sorted(values_of(p.args, "--name")[0] for p in RecordedPopen.started)
    assert launcher.describe() == "docker, 3 containers, network fedscale-net"


def test_example_job_runs_on_the_host_network_as_locally(no_docker: list[tuple[str, ...]], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    job = load_job(str(ROOT / "benchmark" / "configs" / "deploy" / "docker.yml"))
    assert DockerLauncher.prepare(job, print) == job
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    launcher = DockerLauncher(job, Path("run"), ENV, None, {})  # resume takes the run folder as given
    launcher.start_aggregator()
    launcher.start_executor("executor-1", log_offset=120)
    aggregator, executor = RecordedPopen.started
    assert values_of(aggregator.args, "--network") == ["host"] and "-p" not in aggregator.args
    assert values_of(aggregator.args, "-v")[0] == f"{tmp_path}/run:{tmp_path}/run"
    assert executor.args[-4:] == ["--executor-id", "executor-1", "--log-offset", "120"]


@pytest.mark.parametrize("change, problem", [
    ({"worker_ips": ["10.0.0.2:[1]"]}, "worker_ips: host '10.0.0.2' is remote; containers run on this machine's docker"),
    ({"container_network": "bridge"}, "container_network: 'bridge' does not resolve container names"),
    ({"data_path": "data"}, "job_conf.clients_file: '{fleet}' is not visible in the job's containers; put it under "
                            "data_path ({data}), which they mount"),
])
def test_jobs_the_containers_cannot_run_are_refused_in_one_line(
        change: dict[str, Any], problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        no_docker: list[tuple[str, ...]]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    path = write_job(tmp_path)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "use_container": "docker",
                                    "data_path": str(tmp_path), **change}))
    problem = problem.format(fleet=tmp_path / "fleet.json", data=tmp_path / "data")
    with pytest.raises(ConfigError, match=re.escape(problem)) as refused:
        DockerLauncher.prepare(load_job(str(path)), print)
    assert "\n" not in str(refused.value)


# Real jobs in containers (.ci/containers)


def container_job(folder: Path, name: str, rounds: int, **top: Any) -> Path:
    """A small job named ``name`` whose processes run in containers; its files (the fleet) under
    data_path, the test's folder."""
    path = write_job(folder, job_name=name, rounds=rounds, eval_interval=1)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "use_container": "docker",
                                    "data_path": str(folder), **top}))
    return path


def containers_of(job_name: str, *flags: str) -> list[str]:
    """Names of the job's containers (``docker ps`` with ``flags``: ``-a`` for stopped ones too)."""
    listed = subprocess.run(["docker", "ps", *flags, "--filter", f"name=fedscale-{job_name}-", "--format",
                             "{{.Names}}"], capture_output=True, text=True, check=True)
    return sorted(listed.stdout.split())


def started_since(since: float, job_name: str) -> list[str]:
    """The job's containers started since the time ``since``, by process (their names without the uid)."""
    started = subprocess.run(["docker", "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
                              "--filter", "type=container", "--filter", "event=start", "--format",
                              "{{.Actor.Attributes.name}}"], capture_output=True, text=True, check=True)
    return sorted(name.rsplit("-", 1)[0] for name in started.stdout.split() if name.startswith(f"fedscale-{job_name}-"))


def assert_owned_by_user(run_dir: Path) -> None:
    for path in [run_dir, *run_dir.rglob("*")]:
        stat = path.stat()
        assert (stat.st_uid, stat.st_gid) == (os.getuid(), os.getgid()), path


def processes(job_name: str) -> list[str]:
    return [f"fedscale-{job_name}-aggregator", f"fedscale-{job_name}-executor-1", f"fedscale-{job_name}-executor-2"]


@pytest.fixture
def user_network() -> Iterator[str]:
    name = f"fedscale-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "network", "create", name], capture_output=True, check=True)
    yield name
    subprocess.run(["docker", "network", "rm", name], capture_output=True)


@pytest.mark.containers
def test_job_runs_to_its_end_in_containers(tmp_path: Path) -> None:
    since = time.time()
    result = run_driver(tmp_path, "submit", str(container_job(tmp_path, "docker_done", rounds=3)))
    assert result.returncode == 0, result.stderr
    run_dir = run_dirs(tmp_path, "docker_done")[-1]
    end = events(run_dir / commons.AGGREGATOR_LOG)[-1]
    assert (end["tag"], end["status"], end["rounds_completed"]) == (commons.JOB_END, commons.STATUS_COMPLETED, 3)
    for executor_id in ("executor-1", "executor-2"):
        assert events(run_dir / commons.executor_log_name(executor_id))[-1]["status"] == commons.STATUS_COMPLETED
    assert started_since(since, "docker_done") == processes("docker_done")
    assert containers_of("docker_done", "-a") == []
    assert_owned_by_user(run_dir)


@pytest.mark.containers
def test_job_on_a_user_network_reaches_its_aggregator_by_container_name(tmp_path: Path, user_network: str) -> None:
    since = time.time()
    job = container_job(tmp_path, "docker_net", rounds=2, container_network=user_network, ports=[29871])
    result = run_driver(tmp_path, "submit", str(job))
    assert result.returncode == 0, result.stderr
    run_dir = run_dirs(tmp_path, "docker_net")[-1]
    begin, *_, end = events(run_dir / commons.AGGREGATOR_LOG)
    assert begin["address"] == "0.0.0.0:29500" and end["status"] == commons.STATUS_COMPLETED
    assert started_since(since, "docker_net") == processes("docker_net")
    assert containers_of("docker_net", "-a") == []


@pytest.mark.containers
def test_stop_ends_a_container_job_and_leaves_no_container(tmp_path: Path) -> None:
    driver = start_driver(tmp_path, "submit", str(container_job(tmp_path, "docker_stop", rounds=1000)))
    try:
        run_dir = wait_for_run_dir(tmp_path, "docker_stop")
        wait_for_event(run_dir / commons.AGGREGATOR_LOG, commons.ROUND_BEGIN, timeout=120, round=2)
        assert [name.rsplit("-", 1)[0] for name in containers_of("docker_stop")] == processes("docker_stop")
        ids = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", "name=fedscale-docker_stop-"],
                             capture_output=True, text=True, check=True).stdout.split()
        running = job_pids(run_dir)
        clients = [pid for pid, cmd in running.items() if cmd.startswith("docker run ")]
        programs = [pid for pid, cmd in running.items() if cmd.startswith("python -m fedscale.cloud.")]
        assert len(clients) == len(programs) == 3
        for pid in programs:  # each runs in one of the job's containers
            cgroup = Path(f"/proc/{pid}/cgroup").read_text()
            assert any(container_id in cgroup for container_id in ids), cgroup
        environ = Path(f"/proc/{clients[0]}/environ").read_bytes().split(b"\0")
        secret = next(v for v in environ if v.startswith(commons.SECRET_ENV.encode() + b"=")).split(b"=", 1)[1]
        assert len(secret) == 64 and f"-e {commons.SECRET_ENV} " in running[clients[0]]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    assert secret not in (entry / "cmdline").read_bytes(), entry
                except OSError:
                    pass
        assert secret not in (run_dir / commons.JOB_FILE).read_bytes()
        record = json.loads((tmp_path / "state" / "docker_stop.json").read_text())["launcher"]
        assert record["kind"] == "docker" and sorted(record["containers"]) == containers_of("docker_stop")
        stopped = run_driver(tmp_path, "stop", "docker_stop")
        assert stopped.returncode == 0, stopped.stderr
        assert driver.wait(timeout=30) == 130
        assert containers_of("docker_stop", "-a") == []
        wait_until_gone(run_dir, timeout=5)
        assert events(run_dir / commons.AGGREGATOR_LOG)[-1]["status"] == commons.STATUS_STOPPED
        assert_owned_by_user(run_dir)
    finally:
        if driver.poll() is None:
            driver.terminate()
            driver.wait(timeout=30)
