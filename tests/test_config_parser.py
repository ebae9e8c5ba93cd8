"""Job files: FedScale's format accepted and typed, every bad input reported as one ConfigError line."""
from __future__ import annotations

import copy
import json
import os
import pickle
from pathlib import Path

import pytest

from fedscale.cloud.config_parser import (
    KEYS,
    ConfigError,
    JobConf,
    JobSpec,
    WorkerHost,
    describe_keys,
    inactive_keys,
    load_job,
    parse_job,
)
from fedscale.dataloaders.catalog import MODEL_NAMES

# Every job_conf key of FedScale 1.0's config_parser.py (GitHub HEAD 7ec441c2).
FEDSCALE_KEYS = """
job_name log_path wandb_token ps_ip ps_port this_rank connection_timeout experiment_mode engine num_executors
executor_configs num_participants data_map_file use_cuda cuda_device time_stamp task device_avail_file clock_factor
model_zoo data_dir device_conf_file model data_set sample_mode filter_less filter_more train_uniform conf_path
overcommitment model_size round_threshold round_penalty clip_bound blacklist_rounds blacklist_max_len embedding_file
input_shape save_checkpoint rounds local_steps batch_size test_bsz backend learning_rate min_learning_rate input_dim
output_dim dump_epoch decay_factor decay_round num_loaders eval_interval sample_seed test_ratio loss_decay
exploration_min cut_off_util gradient_policy yogi_eta yogi_tau yogi_beta yogi_beta2 qfed_q proxy_mu cfg_file
test_output_dir train_size_file test_size_file data_cache backbone malicious_factor max_concurrency max_staleness
noise_factor clip_threshold target_delta pacer_delta pacer_step exploration_alpha exploration_factor
exploration_decay sample_window line_by_line clf_block_size mlm mlm_probability overwrite_cache block_size
weight_decay adam_epsilon vocab_token_size vocab_tag_size epsilon gamma memory_capacity target_replace_iter
n_actions n_states num_classes train-manifest test-manifest sample-rate labels-path window-size window-stride
window hidden-size hidden-layers rnn-type finetune speed-volume-perturb spec-augment noise-dir noise-prob noise-min
noise-max no-bidirectional
""".split()

FEDSCALE_JOB = """\
# A FedScale femnist job, adapted only where our data sets and models differ.
ps_ip: 10.0.0.1
ps_port: 29501
worker_ips:
    - 10.0.0.1:[4]
    - 10.0.0.2:[2,2,0]
exp_path: $FEDSCALE_HOME/fedscale/cloud
executor_entry: execution/executor.py
aggregator_entry: aggregation/aggregator.py
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands:
    - source $HOME/anaconda3/bin/activate fedscale
job_conf:
    - job_name: femnist                   # logs under log_path/job_name/time_stamp
    - log_path: $FEDSCALE_HOME/benchmark
    - num_participants: 50
    - data_set: femnist
    - data_dir: $FEDSCALE_HOME/benchmark/dataset/data/femnist
    - data_map_file: $FEDSCALE_HOME/benchmark/dataset/data/femnist/client_data_mapping/train.csv
    - device_conf_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_device_capacity
    - device_avail_file: $FEDSCALE_HOME/benchmark/dataset/data/device_info/client_behave_trace
    - model: cnn
    - model_zoo: fedscale-torch-zoo
    - eval_interval: 10
    - rounds: 1000
    - filter_less: 21
    - filter_more: 1e15
    - learning_rate: 4e-5
    - yogi_eta: 3e-3
    - gradient_policy: fed-yogi
    - sample_seed: "7"
    - use_cuda: "False"
    - save_checkpoint: no
    - input_shape: 32 32 3
    - ps_port: "29501"
    - train-manifest: data/train.csv
    - sample-rate: 8000
    - spec-augment: "on"
    - noise-dir:
    - cuda_device: 0
"""


def write(directory: Path, text: str, name: str = "job.yml") -> str:
    path = directory / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def fedscale_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$FEDSCALE_HOME and $HOME set to folders holding the FEMNIST files the FedScale job names."""
    home = tmp_path / "fedscale"
    mapping = home / "benchmark/dataset/data/femnist/client_data_mapping"
    mapping.mkdir(parents=True)
    (mapping / "train.csv").write_text("client_id,sample_path,label_name,label_id\n")
    device_info = home / "benchmark/dataset/data/device_info"
    device_info.mkdir(parents=True)
    for name in ("client_device_capacity", "client_behave_trace"):
        (device_info / name).write_bytes(b"")
    monkeypatch.setenv("FEDSCALE_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    return home


def test_fedscale_job_file_is_accepted_and_typed(tmp_path: Path, fedscale_home: Path) -> None:
    job = load_job(write(tmp_path, FEDSCALE_JOB))
    conf = job.conf
    assert (job.ps_ip, job.ps_port, conf.cluster.ps_port) == ("10.0.0.1", 29501, 29501)
    assert job.workers == (WorkerHost("10.0.0.1", 4), WorkerHost("10.0.0.2", 4))
    assert job.num_executors == conf.cluster.num_executors == 8
    assert job.exp_path == str(fedscale_home / "fedscale/cloud")
    assert job.auth == {"ssh_user": "", "ssh_private_key": str(tmp_path / "user/.ssh/id_rsa")}
    assert job.setup_commands == ("source $HOME/anaconda3/bin/activate fedscale",)
    assert job.log_root == conf.identity.log_path == str(fedscale_home / "benchmark")
    assert conf.data.data_dir == str(fedscale_home / "benchmark/dataset/data/femnist")
    data_map_file = conf.data.data_map_file
    assert data_map_file.endswith("client_data_mapping/train.csv") and os.path.isabs(data_map_file)
    assert conf.fleet.device_avail_file == str(fedscale_home / "benchmark/dataset/data/device_info/"
                                                               "client_behave_trace")
    assert conf.compat.use_cuda is False and conf.training.save_checkpoint is False and conf["spec-augment"] is True
    assert conf.fleet.filter_more == 10**15 and isinstance(conf.fleet.filter_more, int)
    assert conf.training.learning_rate == 4e-5 and conf.server_algorithm.yogi_eta == 3e-3
    assert conf.training.seed == conf["sample_seed"] == 7
    assert conf.compat.input_shape == (32, 32, 3)
    assert conf["train-manifest"] == "data/train.csv" and conf["sample-rate"] == 8000
    assert conf["noise-dir"] is None and conf.compat.cuda_device == "0"
    assert (conf.training.rounds, conf.training.model, conf.server.gradient_policy) == (1000, "cnn", "fed-yogi")
    assert set(inactive_keys(conf)) == {
        "cuda_device", "use_cuda", "model_zoo", "input_shape",
        "train-manifest", "sample-rate", "spec-augment", "noise-dir",
    }


def test_defaults_are_filled_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    job = load_job(write(tmp_path, "job_conf:\n  - rounds: 3\n"))
    assert job.conf.explicit == {"rounds"}
    assert (job.ps_ip, job.ps_port, job.workers) == ("127.0.0.1", 29500, (WorkerHost("127.0.0.1", 1),))
    assert job.exp_path == job.log_root == str(tmp_path)
    assert (job.auth, job.setup_commands) == ({}, ())
    values = job.conf.to_dict()
    assert values["rounds"] == 3
    for name, spec in KEYS.items():
        if name != "rounds":
            assert values[name] == (list(spec.default) if isinstance(spec.default, tuple) else spec.default), name
    training = job.conf.training
    assert (job.conf.data.data_set, training.model, training.save_checkpoint, training.seed) == ("digits", "mlp", True, 233)
    assert inactive_keys(job.conf) == []


def test_default_job_and_plain_mapping_job_conf() -> None:
    assert parse_job({}, "<default>").conf == JobConf(
        {"num_executors": 1, "ps_ip": "127.0.0.1", "ps_port": 29500}, explicit=()
    )
    job = parse_job({"job_conf": {"rounds": "7", "model": "logistic"}}, "<inline>")
    assert (job.conf.training.rounds, job.conf.training.model, job.conf.explicit) == (7, "logistic",
                                                                                      {"rounds", "model"})


def test_a_host_listed_twice_runs_the_processes_of_all_its_entries() -> None:
    """FedScale accepts a host repeated in worker_ips (rewriting hosts to one address makes repeats)."""
    job = parse_job({"worker_ips": ["h:[1]", "g:[2]", "h:[2,1]"]}, "job.yml")
    assert job.workers == (WorkerHost("h", 4), WorkerHost("g", 2)) and job.num_executors == 6


def test_every_fedscale_key_is_declared_and_defaults_validate() -> None:
    assert set(FEDSCALE_KEYS) - set(KEYS) == {"sample_seed"}
    assert "sample_seed" in KEYS["seed"].aliases
    assert JobConf(JobConf().to_dict()).to_dict() == JobConf().to_dict()
    listing = describe_keys()
    assert all(f"  {name} " in listing for name in KEYS)


def test_job_spec_json_round_trip(tmp_path: Path, fedscale_home: Path) -> None:
    job = load_job(write(tmp_path, FEDSCALE_JOB))
    again = JobSpec.from_dict(json.loads(json.dumps(job.to_dict())))
    assert again == job
    assert again.conf.explicit == job.conf.explicit
    assert inactive_keys(again.conf) == inactive_keys(job.conf)


def test_job_spec_from_dict_revalidates(tmp_path: Path, fedscale_home: Path) -> None:
    data = load_job(write(tmp_path, FEDSCALE_JOB)).to_dict()
    with pytest.raises(ConfigError, match=r"job\.yml: job_conf\.rounds: expected an integer >= 1 and <= 1000000, got 0"):
        JobSpec.from_dict({**data, "conf": {**data["conf"], "rounds": 0}})
    with pytest.raises(ConfigError, match="num_executors: expected 8"):
        JobSpec.from_dict({**data, "conf": {**data["conf"], "num_executors": 3}})
    with pytest.raises(ConfigError, match="not a resolved job"):
        JobSpec.from_dict({**data, "workers": None})


def test_alias_sample_seed() -> None:
    conf = parse_job({"job_conf": [{"sample_seed": 5}]}, "a.yml").conf
    assert (conf.training.seed, conf["sample_seed"], conf.explicit) == (5, 5, {"seed"})
    assert conf.replace(sample_seed=9).training.seed == 9
    assert JobConf({"sample_seed": 3}).training.seed == 3
    with pytest.raises(ConfigError, match="'seed' and 'sample_seed' are names of the same key; set only one"):
        parse_job({"job_conf": [{"seed": 1}, {"sample_seed": 2}]}, "a.yml")


def test_job_conf_api() -> None:
    conf = JobConf({"learning_rate": "0.1"})
    assert conf.training.learning_rate == conf["learning_rate"] == 0.1
    assert conf["no-bidirectional"] is False
    with pytest.raises(AttributeError):
        conf.learning_rate
    with pytest.raises(KeyError, match="did you mean 'learning_rate'"):
        conf["learning_rat"]
    with pytest.raises(KeyError):
        conf["nope"]
    with pytest.raises(AttributeError, match="immutable"):
        conf.rounds = 3
    changed = conf.replace(rounds=3, **{"hidden-size": "64"})
    assert (changed.training.rounds, changed["hidden-size"], conf.training.rounds) == (3, 64, 50)
    assert changed.explicit == {"learning_rate", "rounds", "hidden-size"}
    with pytest.raises(ConfigError, match=r"^job_conf\.rounds: expected an integer >= 1 and <= 1000000, got -1$"):
        conf.replace(rounds=-1)
    with pytest.raises(ConfigError, match="unknown key 'round'"):
        conf.replace(round=3)
    assert JobConf.from_dict(conf.to_dict(), explicit=conf.explicit) == conf
    assert pickle.loads(pickle.dumps(conf)) == conf == copy.deepcopy(conf)
    assert hash(conf) == hash(JobConf({"learning_rate": 0.1}))
    assert "learning_rate=0.1" in repr(conf)


@pytest.mark.parametrize(
    ("key", "raw", "typed"),
    [
        ("filter_more", "1e15", 10**15),
        ("filter_more", 1e15, 10**15),
        ("rounds", "12", 12),
        ("rounds", 3.0, 3),
        ("learning_rate", "4e-5", 4e-5),
        ("learning_rate", 1, 1.0),
        ("use_cuda", "False", False),
        ("use_cuda", "YES", True),
        ("use_cuda", "off", False),
        ("use_cuda", "1", True),
        ("use_cuda", 0, False),
        ("save_checkpoint", False, False),
        ("job_name", 2024, "2024"),
        ("input_shape", [1, "28", 28.0], (1, 28, 28)),
        ("input_shape", "[3, 32, 32]", (3, 32, 32)),
        ("cuda_device", None, None),
    ],
)
def test_values_are_converted(key: str, raw: object, typed: object) -> None:
    value = JobConf({key: raw})[key]
    assert value == typed and type(value) is type(typed)


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("learning_rate", "abc", "expected a number > 0 and <= 1e+30, got 'abc'"),
        ("learning_rate", 0, "expected a number > 0 and <= 1e+30, got 0"),
        ("learning_rate", "nan", "expected a number > 0 and <= 1e+30, got 'nan'"),
        ("rounds", 1.5, "expected an integer >= 1 and <= 1000000, got 1.5"),
        ("rounds", True, "expected an integer >= 1 and <= 1000000, got true"),
        ("rounds", None, "expected an integer >= 1 and <= 1000000, got null"),
        ("filter_more", "1e400", "expected an integer >= 1, got '1e400'"),
        ("use_cuda", "maybe", "expected a boolean (true/false), got 'maybe'"),
        ("use_cuda", 2, "expected a boolean (true/false), got 2"),
        ("job_name", "my job", "expected a name made of letters, digits, '_', '.' and '-', got 'my job'"),
        ("job_name", "..", "expected a name made of letters, digits, '_', '.' and '-', got '..'"),
        ("time_stamp", "a/b", "expected empty, or a name made of letters, digits, '_', '.' and '-', got 'a/b'"),
        ("ps_port", 70000, "expected an integer >= 0 and <= 65535, got 70000"),
        ("model", "resnet101", f"expected one of {', '.join(map(repr, MODEL_NAMES))}, got 'resnet101'"),
        ("partition", "noniid", "expected one of 'iid', 'dirichlet', got 'noniid'"),
        ("input_shape", [1, "x"], "expected a list of integers, got [1, 'x']"),
        ("window", {"a": 1}, "expected a string, got {'a': 1}"),
        ("seed", -1, "expected an integer >= 0 and <= 4294967295, got -1"),
        ("attack", "little(q=1)", "expected an attack spec such as 'sign_flip' (python docker/driver.py list "
                                  "attacks), got 'little(q=1)' (little has no parameter 'q'; it takes z)"),
        ("aggregator", "nnm+meamed(beta=1)", "expected a robust aggregation spec such as 'nnm+krum', got "
         "'nnm+meamed(beta=1)' (meamed has no parameter 'beta'; it takes none)"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, key: str, raw: object, expected: str) -> None:
    path = write(tmp_path, json.dumps({"job_conf": [{key: raw}]}))
    with pytest.raises(ConfigError) as caught:
        load_job(path)
    assert str(caught.value) == f"{path}: job_conf.{key}: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "expected a mapping of job keys (ps_ip, worker_ips, job_conf, ...) at the top level, got ['a', 'b']"),
        ("", "the file is empty"),
        ("ps_ip: a\n  b: c\n", "line 2: YAML syntax error: mapping values are not allowed here"),
        ("job_conf:\n  - rounds: 1\n  - rounds: [\n", "line 4: YAML syntax error"),
        ("worker_ip: ['h:[1]']\n", "unknown top-level key 'worker_ip' (did you mean 'worker_ips'?)"),
        ("learning_rate: 0.1\n", "unknown top-level key 'learning_rate' (it is a job_conf key: put it under job_conf)"),
        ("ps_ip: a\nps_ip: b\n", "line 2: duplicate key 'ps_ip'"),
        ("job_conf: 5\n", "job_conf: expected a list of one-key maps ('- key: value') or a mapping, got 5"),
        ("job_conf:\n  - rounds: 1\n    batch_size: 2\n", "job_conf[0]: expected a one-key map such as '- learning_rate: 0.05'"),
        ("job_conf:\n  - rounds\n", "job_conf[0]: expected a one-key map"),
        ("job_conf:\n  - rounds: 1\n  - rounds: 2\n", "job_conf: duplicate key 'rounds'"),
        ("job_conf:\n  rounds: 1\n  rounds: 2\n", "line 3: duplicate key 'rounds'"),
        ("job_conf:\n  - learning_rat: 1\n", "job_conf: unknown key 'learning_rat' (did you mean 'learning_rate'?)"),
        ("job_conf:\n  - train_manifest: a\n", "(did you mean 'train-manifest'?)"),
        ("job_conf:\n  - data_set: femnist\n", "job_conf.data_dir: required when data_set is 'femnist'"),
        ("job_conf:\n  - data_set: femnist\n  - data_dir: /no/such/dir\n",
         "job_conf.data_dir: expected an existing directory, got '/no/such/dir' (not found)"),
        ("job_conf:\n  - data_map_file: /no/such.csv\n",
         "job_conf.data_map_file: expected an existing file, got '/no/such.csv' (not found)"),
        ("job_conf:\n  - data_dir: $NO_SUCH_VARIABLE_XYZ/d\n  - data_set: femnist\n",
         "job_conf.data_dir: '$NO_SUCH_VARIABLE_XYZ/d' uses $NO_SUCH_VARIABLE_XYZ, which is not set in the environment"),
        ("job_conf:\n  - num_clients: 3\n  - num_participants: 4\n",
         "job_conf.num_participants: expected at most num_clients (3), got 4"),
        ("job_conf:\n  - heartbeat_interval: 5\n",
         "job_conf.heartbeat_interval: expected a number below executor_timeout (5.0), got 5.0"),
        ("worker_ips: ['h:[2]']\njob_conf:\n  - num_executors: 3\n",
         "job_conf.num_executors: expected 2, the process total of worker_ips it is derived from, got 3"),
        ("ps_port: 1000\njob_conf:\n  - ps_port: 1001\n",
         "job_conf.ps_port: 1001 differs from the top-level ps_port 1000; set it in one place"),
        ("ps_port: -1\n", "ps_port: expected an integer >= 0 and <= 65535, got -1"),
        ("worker_ips: 'h:[1]'\n", "worker_ips: expected a non-empty list of 'host:[n]' entries, got 'h:[1]'"),
        ("worker_ips: []\n", "worker_ips: expected a non-empty list"),
        ("worker_ips: ['h:[1]', 'h2:4']\n",
         "worker_ips[1]: expected 'host:[n]' or 'host:[n1,n2,...]' (executor processes per GPU), got 'h2:4'"),
        ("worker_ips: ['h:[]']\n", "worker_ips[0]: expected 'host:[n]'"),
        ("worker_ips: ['h:[0,0]']\n", "worker_ips[0]: expected at least one process on h"),
        ("worker_ips: ['h:[40]', 'g:[1]', 'h:[30]']\n",
         "worker_ips[2]: expected at most 64 executor processes on one host, got 'h:[30]' (70 with its earlier "
         "entries for h)"),
        ("executor_entry: my_executor.py\n",
         "executor_entry: expected a path ending in 'executor.py' or 'executor_ctnr.py', meaning the built-in one "
         "(custom entry scripts are not run), got 'my_executor.py'"),
        ("aggregator_entry: aggregation/my_aggregator.py\n",
         "aggregator_entry: expected a path ending in 'aggregator.py', 'aggregator_ctnr.py' or 'async_aggregator.py', "
         "meaning the built-in one (custom entry scripts are not run), got 'aggregation/my_aggregator.py'"),
        ("job_conf:\n  - max_staleness: 2\n",
         "job_conf.max_staleness: applies to asynchronous jobs only (aggregator_entry: async_aggregator.py)"),
        ("aggregator_entry: async_aggregator.py\njob_conf:\n  - async_buffer: 8\n  - max_concurrency: 6\n",
         "job_conf.num_participants: expected an async_buffer (num_participants) of at most max_concurrency (6), got 8"),
        ("aggregator_entry: async_aggregator.py\njob_conf:\n  - async_buffer: 3\n  - num_participants: 3\n",
         "job_conf: 'async_buffer' and 'num_participants' are names of the same key; set only one"),
        ("aggregator_entry: async_aggregator.py\njob_conf:\n  - adaptive_training: true\n",
         "job_conf.adaptive_training: fits each client's work to a synchronous round's time budget; not available in "
         "an asynchronous job (aggregator_entry: async_aggregator.py)"),
        ("aggregator_entry: async_aggregator.py\njob_conf:\n  - sample_mode: pyramidfl\n",
         "job_conf.sample_mode: pyramidfl shapes each participant's work to a synchronous round"),
        ("aggregator_entry: async_aggregator.py\njob_conf:\n  - overcommitment: 1.3\n",
         "job_conf.overcommitment: over-commits synchronous rounds"),
        ("aggregator_entry: async_aggregator.py\njob_conf:\n  - save_checkpoint: true\n",
         "job_conf.save_checkpoint: cannot save the clients in flight"),
        ("auth:\n  ssh_usr: me\n", "auth: unknown key 'ssh_usr' (did you mean 'ssh_user'?)"),
        ("auth: me\n", "auth: expected a mapping with ssh_user and/or ssh_private_key"),
        ("setup_commands: ls\n", "setup_commands: expected a list of shell commands, got 'ls'"),
        ("setup_commands: [ls, 3]\n", "setup_commands[1]: expected a string, got 3"),
    ],
)
def test_bad_job_files_give_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_job(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message


def test_unreadable_files(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.yml")
    with pytest.raises(ConfigError, match=r"missing\.yml: cannot read the job file: No such file or directory$"):
        load_job(missing)
    with pytest.raises(ConfigError, match="cannot read the job file: Is a directory"):
        load_job(str(tmp_path))
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00job")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_job(str(binary))
    if os.geteuid() != 0:
        locked = Path(write(tmp_path, "ps_ip: a\n", "locked.yml"))
        locked.chmod(0)
        with pytest.raises(ConfigError, match="cannot read the job file: Permission denied"):
            load_job(str(locked))


def test_relative_paths_resolve_against_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps/train.csv").write_text("")
    monkeypatch.chdir(tmp_path)
    job = parse_job({"exp_path": "runs", "job_conf": [{"data_map_file": "maps/train.csv"}]}, "a.yml")
    assert job.exp_path == job.log_root == str(tmp_path / "runs")
    assert job.conf.data.data_map_file == str(tmp_path / "maps/train.csv")


def test_num_participants_may_exceed_num_clients_with_a_data_map_file(tmp_path: Path) -> None:
    mapping = tmp_path / "train.csv"
    mapping.write_text("")
    conf = JobConf({"num_clients": 2, "num_participants": 10, "data_map_file": str(mapping)})
    assert conf.training.num_participants == 10


def test_config_error_parts_and_pickling() -> None:
    error = ConfigError("expected an integer", "job_conf.rounds", "a.yml")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) == "a.yml: job_conf.rounds: expected an integer"
    assert (again.source, again.where, again.problem) == ("a.yml", "job_conf.rounds", "expected an integer")
    assert str(ConfigError("a.yml: worker_ips: host 'x' is remote")) == "a.yml: worker_ips: host 'x' is remote"
