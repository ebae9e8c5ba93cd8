"""The example job files of benchmark/configs/deploy: one job, four ways to run it, differing only
in their host section; and FedScale's own container job files parse (hosts rewritten first:
nothing here ever contacts a host named in an example)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fedscale.cloud.config.deployment import KEYS as DEPLOYMENT_KEYS
from fedscale.cloud.config_parser import ConfigError, load_job, parse_job
from fedscale.deploy.launcher import job_mode
from tests.fedscale_examples import FEDSCALE_DOCKER, FEDSCALE_K8S, on_loopback
from tests.jobs import ROOT

EXAMPLES = ROOT / "benchmark" / "configs" / "deploy"
MODES = {"local": "local", "ssh": "ssh", "docker": "docker", "kubernetes": "kubernetes"}
HOST_SECTION = {"ps_ip", "ps_port", "worker_ips", "num_executors", "exp_path", "auth", "setup_commands",
                *DEPLOYMENT_KEYS}


@pytest.mark.parametrize("name", MODES)
def test_each_example_parses_and_runs_with_its_launcher(name):
    job = load_job(str(EXAMPLES / f"{name}.yml"))
    assert job_mode(job) == MODES[name]
    assert job.num_executors >= 2


def test_the_examples_differ_only_in_their_host_section():
    files = {name: yaml.safe_load((EXAMPLES / f"{name}.yml").read_text()) for name in MODES}
    assert len({yaml.safe_dump(data["job_conf"]) for data in files.values()}) == 1
    for name, data in files.items():
        assert set(data) - {"job_conf"} <= HOST_SECTION, name
    resolved = {name: load_job(str(EXAMPLES / f"{name}.yml")).conf.public_dict() for name in MODES}
    ignored = {"ps_ip", "ps_port", "num_executors"}  # the host section's, repeated in job_conf
    assert len({yaml.safe_dump({k: v for k, v in conf.items() if k not in ignored}) for conf in resolved.values()}) == 1


@pytest.mark.parametrize("text, mode, executors", [(FEDSCALE_DOCKER, "docker", 2), (FEDSCALE_K8S, "kubernetes", 2)])
def test_fedscales_container_job_files_parse(tmp_path, monkeypatch, text, mode, executors):
    monkeypatch.setenv("FEDSCALE_HOME", str(tmp_path))
    data = yaml.safe_load(on_loopback(text))
    for item in data["job_conf"]:  # FedScale's container paths are read under data_path, where they must exist
        for key, value in item.items():
            path = tmp_path / "benchmark" / str(value).removeprefix("/FedScale/benchmark/")
            if key == "data_dir":
                path.mkdir(parents=True, exist_ok=True)
            elif key.endswith("_file"):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("")
    job = parse_job(data, "fedscale.yml")
    assert (job.conf.data.data_set, job.conf.training.model) == (("cifar10" if mode == "docker" else "femnist"),
                                                                 "resnet18")
    assert job_mode(job) == mode and job.num_executors == executors
    assert job.deployment.data_path == str(tmp_path / "benchmark")
    if mode == "docker":
        assert job.deployment.ports == (20010, 20011, 20011)
        assert job.deployment.container_network == "fedscale-net"


@pytest.mark.parametrize("section, message", [
    ({"launcher": "slurm"}, "launcher: expected one of"),
    ({"use_container": "podman"}, "use_container: expected one of"),
    ({"use_container": "docker", "launcher": "ssh"}, "launcher: expected 'docker' or nothing"),
    ({"num_aggregators": 2}, "num_aggregators: expected one of 1"),
    ({"ports": [20010]}, None),
    ({"ports": [20010, 1, 2, 3]}, "ports: expected 1 or 3 ports"),
    ({"ports": [0]}, "ports[0]: expected an integer >= 1"),
    ({"min_workers": -1}, "min_workers: expected an integer >= 0"),
    ({"num_executors": 3}, "num_executors: expected 2, the process total of worker_ips"),
    ({"container_network": " "}, "container_network: expected a Docker network name"),
])
def test_bad_deployment_keys_are_one_line_errors(section, message):
    data = {"worker_ips": ["127.0.0.1:[2]"], **section}
    if message is None:
        parse_job(data, "job.yml")
        return
    with pytest.raises(ConfigError) as error:
        parse_job(data, "job.yml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_job_with_only_num_executors_runs_that_many_here():
    job = parse_job({"num_executors": 3}, "job.yml")
    assert [(w.host, w.procs) for w in job.workers] == [("127.0.0.1", 3)] and job.num_executors == 3
    assert job_mode(job) == "local"
    assert job_mode(job, "kubernetes") == "kubernetes"
    with pytest.raises(ConfigError, match="--launcher: expected one of"):
        job_mode(job, "slurm")
    again = type(job).from_dict(job.to_dict())
    assert again.deployment == job.deployment and again.num_executors == 3


def test_ssh_example_hosts_are_parsed_not_contacted():
    job = load_job(str(EXAMPLES / "ssh.yml"))
    assert [w.host for w in job.workers] == ["10.0.0.2", "10.0.0.3"] and job.deployment.min_workers == 1
    assert job.auth["ssh_private_key"] == str(Path("~/.ssh/id_ed25519").expanduser())
