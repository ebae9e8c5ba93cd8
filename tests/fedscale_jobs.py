"""FedScale's container job files (its benchmark/configs/docker_deploy/dry_run_docker.yml and
k8s_deploy/femnist_k8s.yml), their keys and values as FedScale ships them, for the tests that
check they load here. Their 10.0.0.x hosts are never contacted: ``on_loopback`` rewrites them."""
from __future__ import annotations

import re

FEDSCALE_DOCKER = """\
use_container: docker
ports: [20010, 20011, 20011]
container_network: fedscale-net
data_path: $FEDSCALE_HOME/benchmark
ps_ip: 10.0.0.1
worker_ips:
    - 10.0.0.1:[1]
    - 10.0.0.2:[1]
exp_path: $FEDSCALE_HOME/examples/containerization
executor_entry: executor_ctnr.py
aggregator_entry: aggregator_ctnr.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
job_conf:
    - job_name: dryrun_docker
    - log_path: /FedScale/benchmark
    - num_participants: 4
    - data_set: cifar10
    - data_dir: /FedScale/benchmark/dataset/data/
    - model: resnet18
    - eval_interval: 10
    - rounds: 20
    - filter_less: 0
    - num_loaders: 2
    - local_steps: 20
    - learning_rate: 0.001
    - batch_size: 32
    - test_bsz: 32
    - use_cuda: False
"""

FEDSCALE_K8S = """\
use_container: k8s
data_path: $FEDSCALE_HOME/benchmark
num_aggregators: 1
num_executors: 2
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
job_conf:
    - job_name: femnist_k8s
    - log_path: /FedScale/benchmark
    - num_participants: 5
    - data_set: femnist
    - data_dir: /FedScale/benchmark/dataset/data/femnist
    - data_map_file: /FedScale/benchmark/dataset/data/femnist/client_data_mapping/train.csv
    - device_conf_file: /FedScale/benchmark/dataset/data/device_info/client_device_capacity
    - device_avail_file: /FedScale/benchmark/dataset/data/device_info/client_behave_trace
    - model: resnet18
    - eval_interval: 10
    - rounds: 21
    - filter_less: 21
    - num_loaders: 2
    - local_steps: 5
    - learning_rate: 0.05
    - batch_size: 20
    - test_bsz: 20
    - use_cuda: False
"""


def on_loopback(text: str, **values: str) -> str:
    """``text`` with its 10.0.0.N hosts as 127.0.0.N and the job_conf ``values`` replaced
    (e.g. ``model="mlp"``)."""
    text = re.sub(r"\b10\.0\.0\.(\d+)\b", r"127.0.0.\1", text)
    for key, value in values.items():
        text, count = re.subn(rf"^(\s*- {key}:) \S+$", rf"\1 {value}", text, flags=re.M)
        assert count == 1, key
    return text
