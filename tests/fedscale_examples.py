"""FedScale's example job files (SymbioticLab/FedScale at 7ec441c2, benchmark/configs/), their keys
and values exactly as FedScale ships them, comments left out: the compatibility surface the tests
check, by their path under benchmark/configs. Their hosts (10.0.0.x, localhost) are never
contacted: tests rewrite them to loopback first (``on_loopback``, or the runs of
tests/test_fedscale_jobs.py)."""
from __future__ import annotations

import re

EXAMPLES: dict[str, str] = {
    "android/mnn.yml": """\
ps_ip: localhost
exp_path: $FEDSCALE_HOME/fedscale/cloud
aggregator_entry: aggregation/aggregator_mnn.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: android-mnn
    - log_path: $FEDSCALE_HOME/benchmark
    - experiment_mode: mobile
    - num_participants: 1
    - model: linear
    - learning_rate: 0.01
    - batch_size: 32
    - input_shape: 32 32 3
    - num_classes: 10
    - test_bsz: 16
""",
    "android/tflite.yml": """\
ps_ip: localhost
exp_path: $FEDSCALE_HOME/fedscale/cloud
aggregator_entry: aggregation/aggregator_tflite.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: android-tflite
    - log_path: $FEDSCALE_HOME/benchmark
    - experiment_mode: mobile
    - num_participants: 1
    - model: linear
    - learning_rate: 0.01
    - batch_size: 32
    - input_shape: 32 32 3
    - num_classes: 10
    - test_bsz: 16
    - engine: 'tensorflow'
""",
    "auxo/auxo.yml": """\
ps_ip: localhost
ps_port: 12345
worker_ips:
    - localhost:[7,7,0,0]
exp_path: $FEDSCALE_HOME/examples/auxo
executor_entry: executor.py
aggregator_entry: aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: auxo_femnist
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 200
    - data_set: femnist
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/
    - data_map_file: $FEDSCALE_HOME/benchmark/dataset/data/femnist/client_data_mapping/train.csv
    - device_conf_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_device_capacity
    - device_avail_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_behave_trace
    - model: resnet18
    - eval_interval: 20
    - rounds: 1000
    - filter_less: 0
    - num_loaders: 2
    - local_steps: 10
    - learning_rate: 0.05
    - batch_size: 20
    - test_bsz: 20
    - use_cuda: True
    - save_checkpoint: False
""",
    "cifar_cpu/cifar_cpu.yml": """\
ps_ip: 10.0.0.1
worker_ips:
    - 10.0.0.1:[2]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: cifar
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 4
    - data_set: cifar10
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/
    - model: shufflenet_v2_x2_0
    - eval_interval: 5
    - rounds: 600
    - filter_less: 0
    - num_loaders: 2
    - local_steps: 20
    - learning_rate: 0.05
    - batch_size: 32
    - test_bsz: 32
    - use_cuda: False
    - save_checkpoint: False
""",
    "docker_deploy/cifar_cpu_docker.yml": """\
use_container: docker
ports: [20020, 20020, 20021]
container_network: fedscale-net
data_path: $FEDSCALE_HOME/benchmark
ps_ip: 10.0.0.1
worker_ips:
    - 10.0.0.2:[2]
exp_path: $FEDSCALE_HOME/examples/containerization
executor_entry: executor_ctnr.py
aggregator_entry: aggregator_ctnr.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
job_conf:
    - job_name: cifar_docker
    - log_path: /FedScale/benchmark
    - num_participants: 4
    - data_set: cifar10
    - data_dir: /FedScale/benchmark/dataset/data/
    - model: shufflenet_v2_x2_0
    - eval_interval: 10
    - rounds: 21
    - filter_less: 0
    - num_loaders: 2
    - local_steps: 20
    - learning_rate: 0.05
    - batch_size: 32
    - test_bsz: 32
    - use_cuda: False
""",
    "docker_deploy/dry_run_docker.yml": """\
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
""",
    "docker_deploy/femnist_docker.yml": """\
use_container: docker
ports: [20000, 20000, 20001]
container_network: fedscale-net
data_path: $FEDSCALE_HOME/benchmark
ps_ip: 10.0.0.1
worker_ips:
    - 10.0.0.2:[2]
exp_path: $FEDSCALE_HOME/examples/containerization
executor_entry: executor_ctnr.py
aggregator_entry: aggregator_ctnr.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
job_conf:
    - job_name: femnist_docker
    - log_path: /FedScale/benchmark
    - num_participants: 50
    - data_set: femnist
    - data_dir: /FedScale/benchmark/dataset/data/femnist
    - data_map_file: /FedScale/benchmark/dataset/data/femnist/client_data_mapping/train.csv
    - device_conf_file: /FedScale/benchmark/dataset/data/device_info/client_device_capacity
    - device_avail_file: /FedScale/benchmark/dataset/data/device_info/client_behave_trace
    - model: resnet18
    - eval_interval: 10
    - rounds: 20
    - filter_less: 21
    - num_loaders: 2
    - local_steps: 5
    - learning_rate: 0.05
    - batch_size: 20
    - test_bsz: 20
    - use_cuda: False
""",
    "dry_run/dry_run.yml": """\
ps_ip: localhost
worker_ips:
    - localhost:[1]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: ../../examples/dry_run/customized_executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: dryrun
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 4
    - data_set: cifar10
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/
    - model: resnet18
    - eval_interval: 5
    - rounds: 200
    - filter_less: 0
    - num_loaders: 2
    - local_steps: 20
    - learning_rate: 0.001
    - batch_size: 32
    - test_bsz: 32
    - use_cuda: False
""",
    "fedbuff_femnist/conf.yml": """\
ps_ip: 10.0.0.1
worker_ips:
    - 10.0.0.1:[4]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/async_aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: femnist
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 50
    - data_set: femnist
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/femnist
    - data_map_file: $FEDSCALE_HOME/benchmark/dataset/data/femnist/client_data_mapping/train.csv
    - device_conf_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_device_capacity
    - device_avail_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_behave_trace
    - model: resnet18
    - eval_interval: 10
    - rounds: 1000
    - filter_less: 21
    - num_loaders: 2
    - local_steps: 5
    - learning_rate: 0.05
    - batch_size: 20
    - test_bsz: 20
    - max_concurrency: 60
    - max_staleness: 5
    - use_cuda: True
""",
    "femnist/conf.yml": """\
ps_ip: 10.0.0.1
worker_ips:
    - 10.0.0.1:[4]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: femnist
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 50
    - data_set: femnist
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/femnist
    - data_map_file: $FEDSCALE_HOME/benchmark/dataset/data/femnist/client_data_mapping/train.csv
    - device_conf_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_device_capacity
    - device_avail_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_behave_trace
    - model: resnet18
    - eval_interval: 10
    - rounds: 1000
    - filter_less: 21
    - num_loaders: 2
    - local_steps: 5
    - learning_rate: 0.05
    - batch_size: 20
    - test_bsz: 20
    - use_cuda: True
    - save_checkpoint: False
""",
    "k8s_deploy/cifar_cpu_k8s.yml": """\
use_container: k8s
data_path: $FEDSCALE_HOME/benchmark
num_aggregators: 1
num_executors: 2
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
job_conf:
    - job_name: cifar_k8s
    - log_path: /FedScale/benchmark
    - num_participants: 4
    - data_set: cifar10
    - data_dir: /FedScale/benchmark/dataset/data/
    - model: shufflenet_v2_x2_0
    - eval_interval: 10
    - rounds: 21
    - filter_less: 0
    - num_loaders: 2
    - local_steps: 20
    - learning_rate: 0.05
    - batch_size: 32
    - test_bsz: 32
    - use_cuda: False
""",
    "k8s_deploy/dry_run_k8s.yml": """\
use_container: k8s
data_path: $FEDSCALE_HOME/benchmark
num_aggregators: 1
num_executors: 2
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
job_conf:
    - job_name: dryrun_k8s
    - log_path: /FedScale/benchmark
    - num_participants: 4
    - data_set: cifar10
    - data_dir: /FedScale/benchmark/dataset/data/
    - model: resnet18
    - eval_interval: 10
    - rounds: 21
    - filter_less: 0
    - num_loaders: 2
    - local_steps: 20
    - learning_rate: 0.001
    - batch_size: 32
    - test_bsz: 32
    - use_cuda: False
""",
    "k8s_deploy/femnist_k8s.yml": """\
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
""",
    "openimage/openimage.yml": """\
ps_ip: 10.0.0.1
worker_ips:
    - 10.0.0.2:[4]
    - 10.0.0.3:[4]
    - 10.0.0.4:[4]
    - 10.0.0.5:[4]
    - 10.0.0.6:[4]
    - 10.0.0.7:[4]
    - 10.0.0.8:[4]
    - 10.0.0.9:[4]
    - 10.0.0.10:[4]
    - 10.0.0.11:[4]
    - 10.0.0.12:[4]
    - 10.0.0.13:[4]
    - 10.0.0.14:[4]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
    - export NCCL_SOCKET_IFNAME='enp94s0f0'
job_conf:
    - job_name: openimage
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 100
    - data_set: openImg
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/openImg
    - data_map_file: $FEDSCALE_HOME/benchmark/dataset/data/openImg/client_data_mapping/train.csv
    - device_conf_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_device_capacity
    - device_avail_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_behave_trace
    - model: shufflenet_v2_x2_0
    - gradient_policy: fed-yogi
    - eval_interval: 30
    - rounds: 5000
    - filter_less: 21
    - num_loaders: 2
    - yogi_eta: 3e-3
    - yogi_tau: 1e-8
    - local_steps: 20
    - learning_rate: 0.05
    - batch_size: 20
    - test_bsz: 20
    - malicious_factor: 4
""",
    "others/heterofl.yml": """\
ps_ip: 10.0.0.1
worker_ips:
    - 10.0.0.1:[2]
    - 10.0.0.2:[4]
    - 10.0.0.3:[4]
exp_path: $FEDSCALE_HOME/examples/heterofl
executor_entry: customized_executor.py
aggregator_entry: customized_aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: heterofl
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 10
    - data_set: cifar10
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/
    - model: resnet_heterofl
    - eval_interval: 5
    - rounds: 400
    - filter_less: 0
    - num_loaders: 2
    - local_steps: 5
    - learning_rate: 0.1
    - batch_size: 10
    - test_bsz: 32
    - use_cuda: False
""",
    "others/local_dp.yml": """\
ps_ip: 10.0.0.1
worker_ips:
    - 10.0.0.1:[5]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: $FEDSCALE_HOME/examples/localDP/customized_executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: local_dp
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 10
    - data_set: femnist
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/femnist
    - sample_mode: random
    - model: resnet18
    - gradient_policy: fed-avg
    - eval_interval: 10
    - rounds: 500
    - filter_less: 20
    - num_loaders: 4
    - yogi_eta: 3e-3
    - yogi_tau: 1e-8
    - local_steps: 5
    - learning_rate: 0.05
    - batch_size: 25
    - test_bsz: 5
    - use_cuda: False
    - noise_factor: 0.1
    - clip_threshold: 2.0
""",
    "others/rl_conf.yml": """\
ps_ip: 10.0.0.1
worker_ips:
    - 10.0.0.2:[4]
    - 10.0.0.3:[4]
    - 10.0.0.4:[4]
    - 10.0.0.5:[4]
    - 10.0.0.6:[4]
    - 10.0.0.7:[4]
    - 10.0.0.8:[4]
    - 10.0.0.9:[4]
    - 10.0.0.10:[4]
    - 10.0.0.11:[4]
    - 10.0.0.12:[4]
    - 10.0.0.13:[4]
    - 10.0.0.14:[4]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
    - export NCCL_SOCKET_IFNAME='enp94s0f0'
job_conf:
    - job_name: rl
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 100
    - device_conf_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_device_capacity
    - device_avail_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_behave_trace
    - model: dqn
    - gradient_policy: fed-yogi
    - eval_interval: 50
    - rounds: 1000
    - filter_less: 21
    - num_loaders: 2
    - yogi_eta: 3e-3
    - yogi_tau: 1e-8
    - local_steps: 20
    - learning_rate: 0.05
    - batch_size: 20
    - malicious_factor: 4
    - task: rl
""",
    "reddit/reddit.yml": """\
ps_ip: 10.0.0.2
worker_ips:
    - 10.0.0.3:[5]
    - 10.0.0.4:[5]
    - 10.0.0.5:[5]
    - 10.0.0.6:[5]
    - 10.0.0.7:[5]
    - 10.0.0.8:[5]
    - 10.0.0.9:[4]
    - 10.0.0.10:[4]
    - 10.0.0.11:[4]
    - 10.0.0.12:[4]
    - 10.0.0.13:[4]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
    - export NCCL_SOCKET_IFNAME='enp94s0f0'
job_conf:
    - job_name: reddit
    - log_path: $FEDSCALE_HOME/benchmark
    - task: nlp
    - num_participants: 100
    - data_set: blog
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/reddit
    - data_map_file: $FEDSCALE_HOME/benchmark/dataset/data/reddit/client_data_mapping/train.csv
    - device_conf_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_device_capacity
    - device_avail_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_behave_trace
    - model: albert-base-v2
    - eval_interval: 30
    - rounds: 5000
    - filter_less: 21
    - num_loaders: 4
    - local_steps: 30
    - learning_rate: 4e-5
    - min_learning_rate: 1e-5
    - batch_size: 20
    - test_bsz: 20
""",
    "speech/google_speech.yml": """\
ps_ip: 10.0.0.2
worker_ips:
    - 10.0.0.3:[5]
    - 10.0.0.4:[5]
    - 10.0.0.5:[5]
    - 10.0.0.6:[5]
    - 10.0.0.7:[5]
    - 10.0.0.8:[5]
    - 10.0.0.9:[4]
    - 10.0.0.10:[4]
    - 10.0.0.11:[4]
    - 10.0.0.12:[4]
    - 10.0.0.13:[4]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
    - export NCCL_SOCKET_IFNAME='enp94s0f0'
job_conf:
    - job_name: google_speech
    - log_path: $FEDSCALE_HOME/benchmark
    - task: speech
    - num_participants: 100
    - data_set: google_speech
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/google_speech
    - data_map_file: $FEDSCALE_HOME/benchmark/dataset/data/google_speech/client_data_mapping/train.csv
    - device_conf_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_device_capacity
    - device_avail_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_behave_trace
    - model: resnet34
    - gradient_policy: fed-yogi
    - eval_interval: 30
    - rounds: 5000
    - filter_less: 21
    - num_loaders: 4
    - yogi_eta: 3e-3
    - yogi_tau: 1e-8
    - local_steps: 30
    - learning_rate: 0.05
    - batch_size: 20
    - test_bsz: 20
""",
    "tf_cifar/tf_cifar.yml": """\
ps_ip: localhost
worker_ips:
    - localhost:[1]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: tf-cifar10
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 4
    - data_set: cifar10
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/
    - model: resnet50
    - model_zoo: fedscale-tensorflow-zoo
    - eval_interval: 5000
    - rounds: 200
    - filter_less: 0
    - num_loaders: 2
    - local_steps: 20
    - learning_rate: 0.001
    - input_shape: 32 32 3
    - batch_size: 32
    - num_classes: 10
    - test_bsz: 32
    - use_cuda: False
    - engine: 'tensorflow'
""",
    "tf_femnist/tf_femnist.yml": """\
ps_ip: localhost
worker_ips:
    - localhost:[1]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: tf-femnist
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 4
    - data_set: femnist
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/femnist
    - model: resnet50
    - model_zoo: fedscale-tensorflow-zoo
    - eval_interval: 5000
    - rounds: 200
    - filter_less: 0
    - num_loaders: 2
    - local_steps: 20
    - learning_rate: 0.001
    - batch_size: 32
    - input_shape: 32 32 3
    - num_classes: 62
    - test_bsz: 32
    - use_cuda: False
    - engine: 'tensorflow'
""",
}

# the container job files, as the docker and kubernetes launcher tests use them
FEDSCALE_DOCKER = EXAMPLES["docker_deploy/dry_run_docker.yml"]
FEDSCALE_K8S = EXAMPLES["k8s_deploy/femnist_k8s.yml"]


def on_loopback(text: str, **values: str) -> str:
    """``text`` with its 10.0.0.N hosts as 127.0.0.N and the job_conf ``values`` replaced
    (e.g. ``model="mlp"``)."""
    text = re.sub(r"\b10\.0\.0\.(\d+)\b", r"127.0.0.\1", text)
    for key, value in values.items():
        text, count = re.subn(rf"^(\s*- {key}:) \S+$", rf"\1 {value}", text, flags=re.M)
        assert count == 1, key
    return text
