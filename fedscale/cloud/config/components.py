"""The configuration of each part of the runtime, as typed, immutable models.

Each class declares the job_conf keys one component reads (``fedscale.cloud.config.keys``
says how a field becomes a key); ``JobConf`` composes them, together with the selectors' and
server algorithms' own ``Config`` models, into the job's configuration. Cross-key rules of a
component live on it as validators; a rule that spans components lives on ``JobConf``.
"""
from __future__ import annotations

import os
import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from fedscale.cloud.aggregation.server_algorithms import SERVER_ALGORITHMS
from fedscale.cloud.config.keys import INACTIVE, PATH, Aliases, Check, Component, ConfigError
from fedscale.dataloaders.catalog import DATA_SETS, MODEL_NAMES, PARTITIONS
from fedscale.selection.registry import SAMPLE_MODES

GRADIENT_POLICIES = tuple(SERVER_ALGORITHMS)


def _is_name(text: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9_.-]+", text) is not None and text not in (".", "..")


def _robust_spec_error(spec: str, kind: str) -> str | None:
    """Why ``spec`` is not a valid robust aggregation or attack spec (None if it is); imports
    the robust library only when a non-default spec needs checking."""
    from fedscale.robust.registry import SpecError, parse_aggregation, parse_attack
    try:
        (parse_aggregation if kind == "aggregation" else parse_attack)(spec)
    except SpecError as err:
        return str(err).removeprefix(f"{spec!r}: ")
    return None


def _robust_spec(kind: str, default: str, expects: str) -> Check:
    """The check of a robust aggregation or attack spec key, saying what is wrong with a bad one."""
    return Check(lambda spec: spec == default or _robust_spec_error(spec, kind) is None, expects,
                 why=lambda spec: _robust_spec_error(spec, kind) or "")


NAME = Check(_is_name, "a name made of letters, digits, '_', '.' and '-'")
OPTIONAL_NAME = Check(lambda text: text == "" or _is_name(text), "empty, or " + NAME.expects)
HOST = Check(lambda text: text != "" and not any(char.isspace() for char in text), "a host name or IP address")
AGGREGATION_SPEC = _robust_spec("aggregation", "mean", "a robust aggregation spec such as 'nnm+krum'")
ATTACK_SPEC = _robust_spec("attack", "", "an attack spec such as 'sign_flip' (python docker/driver.py list attacks)")


def require_existing(key: str, path: str, directory: bool) -> None:
    """Refuse ``path`` (the value of ``key``) unless it is an existing file or directory."""
    kind = "directory" if directory else "file"
    if not (os.path.isdir(path) if directory else os.path.isfile(path)):
        state = "not a " + kind if os.path.exists(path) else "not found"
        raise ConfigError(f"expected an existing {kind}, got {path!r} ({state})", f"job_conf.{key}")


class JobIdentity(Component):
    """The job's name and where its logs go."""

    job_name: Annotated[str, NAME] = Field(
        "demo_job", description="Name of the job; its logs go to <log root>/logs/<job_name>/<time_stamp>/.")
    time_stamp: Annotated[str, OPTIONAL_NAME] = Field(
        "", description="Name of this run's log folder; empty lets the driver derive one from the start time.")
    log_path: Annotated[str, PATH] = Field("", description="Root folder for logs; empty means exp_path.")


class Cluster(Component):
    """The aggregator's address, the executor processes and their liveness timing."""

    ps_ip: Annotated[str, HOST] = Field(
        "127.0.0.1", description="Address of the aggregator; the top-level ps_ip takes precedence.")
    ps_port: int = Field(
        29500, ge=0, le=65535,
        description="Aggregator's port; 0 picks a free one. The top-level ps_port takes precedence.")
    connection_timeout: int = Field(
        60, gt=0, description="Seconds the aggregator waits for the executors to register.")
    executor_timeout: float = Field(
        5.0, gt=0,
        description="Seconds without a heartbeat after which an executor is declared dead and its clients are "
                    "dropped or moved.")
    heartbeat_interval: float = Field(
        1.0, gt=0, description="Seconds between an executor's heartbeats; below executor_timeout.")
    num_executors: int = Field(1, ge=1, description="Executor processes in total; always derived from worker_ips.")
    torch_threads: int = Field(
        1, ge=1, description="Torch threads in each executor process and in the aggregator.")

    @model_validator(mode="after")
    def _heartbeat_below_timeout(self) -> Cluster:
        if self.heartbeat_interval >= self.executor_timeout:
            raise ConfigError(f"expected a number below executor_timeout ({self.executor_timeout}), "
                              f"got {self.heartbeat_interval}", "job_conf.heartbeat_interval")
        return self


class DataConfig(Component):
    """The data set and how it is split into clients."""

    data_set: Literal[DATA_SETS] = Field(
        "digits",
        description="Data set: digits (scikit-learn's bundled 8x8 digits) or femnist (FedScale's files under "
                    "data_dir).")
    data_dir: Annotated[str, PATH] = Field(
        "", description="Folder holding the data set's files; required for femnist.")
    data_map_file: Annotated[str, PATH] = Field(
        "",
        description="CSV assigning training samples to clients (FedScale's client_data_mapping format); empty: use "
                    "partition.")
    partition: Literal[PARTITIONS] = Field(
        "iid",
        description="How the training set is split over num_clients when no data_map_file is given: iid, or "
                    "dirichlet label skew.")
    dirichlet_alpha: float = Field(
        0.5, gt=0, description="Concentration of the dirichlet split; smaller means more skewed clients.")
    num_clients: int = Field(
        100, ge=1, description="Clients the training set is split into when no data_map_file is given.")

    @model_validator(mode="after")
    def _files_exist(self) -> DataConfig:
        if self.data_set == "femnist":
            if not self.data_dir:
                raise ConfigError("required when data_set is 'femnist': the folder of FedScale's FEMNIST files",
                                  "job_conf.data_dir")
            require_existing("data_dir", self.data_dir, directory=True)
        if self.data_map_file:
            require_existing("data_map_file", self.data_map_file, directory=False)
        return self


class TrainingConfig(Component):
    """The model, the rounds, and the clients' local training."""

    model: Literal[MODEL_NAMES] = Field(
        "mlp", description="Model: logistic regression, a small multi-layer perceptron, or a small CNN.")
    rounds: int = Field(50, ge=1, description="Training rounds to run.")
    max_virtual_time: float = Field(
        0.0, ge=0,
        description="Stop after the round that reaches this many virtual seconds (0: no limit), so policies can be "
                    "compared on equal simulated time.")
    num_participants: int = Field(4, ge=1, description="Clients aggregated per round.")
    local_steps: int = Field(20, ge=1, description="Local training steps per client per round.")
    batch_size: int = Field(30, ge=1, description="Training batch size.")
    test_bsz: int = Field(128, ge=1, description="Testing batch size.")
    learning_rate: float = Field(0.05, gt=0, description="Client learning rate.")
    eval_interval: int = Field(5, ge=1, description="Test the global model every this many rounds.")
    save_checkpoint: bool = Field(True, description="Save a model checkpoint at each test.")
    seed: Annotated[int, Aliases("sample_seed")] = Field(
        233, ge=0, le=2**32 - 1, description="Seed for data splitting, client selection and model initialisation.")


class FleetConfig(Component):
    """The device fleet, its traces, and the time model that turns them into round durations
    (download, compute, upload; ``clock_factor`` scales compute)."""

    clients_file: Annotated[str, PATH] = Field(
        "",
        description="Device fleet (.npz or .json of this tool); empty: the small generated fleet that ships with "
                    "it.")
    device_conf_file: Annotated[str, PATH] = Field(
        "",
        description="Client device capacities in FedScale's client_device_capacity pickle; overrides clients_file.")
    device_avail_file: Annotated[str, PATH] = Field(
        "", description="Client availability in FedScale's client_behave_trace pickle, with device_conf_file.")
    clock_factor: float = Field(1.0, gt=0, description="Multiplier on simulated computation time.")
    augmentation_factor: float = Field(
        3.0, gt=0,
        description="Simulated compute per training sample, in units of the device's per-sample inference latency "
                    "(forward plus backward).")
    reduction_factor: float = Field(0.5, gt=0, description="Uplink bandwidth as a fraction of the downlink.")
    filter_less: int = Field(1, ge=0, description="Clients with fewer training samples than this never take part.")
    filter_more: int = Field(
        1000000000000000, ge=1, description="Clients with more training samples than this never take part.")
    overcommitment: float = Field(
        1.3, ge=1,
        description="Clients selected per round, as a multiple of those aggregated; the fastest are kept.")

    @model_validator(mode="after")
    def _files_exist(self) -> FleetConfig:
        for key in ("clients_file", "device_conf_file", "device_avail_file"):
            if getattr(self, key):
                require_existing(key, getattr(self, key), directory=False)
        if self.device_avail_file and not self.device_conf_file:
            raise ConfigError("needs device_conf_file (FedScale's device capacities) as well",
                              "job_conf.device_avail_file")
        return self


class SelectionConfig(Component):
    """Which selector picks each round's participants (its own keys live in its ``Config``)."""

    sample_mode: Literal[SAMPLE_MODES] = Field(
        "random", description="Client selection policy.")


class AdaptiveConfig(Component):
    """Time-budget adaptive training: clients fit their work to the round's budget."""

    adaptive_training: bool = Field(
        False,
        description="Clients fit their local steps and upload size to t_budget and report their simulated times.")
    t_budget: float = Field(
        300.0, gt=0,
        description="Seconds a round allows each client for download, compute and upload (Bliss's pacer moves it).")
    ewma_lambda: float = Field(
        0.7, ge=0, lt=1, description="Adaptive training: weight of the past in the client's running estimates.")
    min_payload_frac: float = Field(
        0.3, gt=0, le=1, description="Adaptive training: smallest fraction of the update uploaded.")
    budget_recheck_steps: int = Field(
        5, ge=1, description="Adaptive training: steps per chunk between budget checks.")
    run_phase_2: bool = Field(
        True,
        description="Adaptive training: after the coarse fill, trade further steps against upload size one step at "
                    "a time.")


class RobustnessConfig(Component):
    """The threat model (which clients are Byzantine and how they attack) and the defence."""

    aggregator: Annotated[str, AGGREGATION_SPEC] = Field(
        "mean",
        description="Robust aggregation spec: pre-aggregators then an aggregator, e.g. nnm+trimmed_mean or "
                    "bucketing(s=2)+cc (python docker/driver.py list aggregators).")
    attack: Annotated[str, ATTACK_SPEC] = Field(
        "",
        description="Attack of the Byzantine clients: an update sent in place of theirs, e.g. sign_flip or "
                    "little(z=1.5), or label_flip, training on labels y -> C - 1 - y; empty: none.")
    byzantine_fraction: float = Field(
        0.0, ge=0, lt=1, description="Fraction of the clients that are Byzantine (a seeded, fixed set).")
    num_byzantine: int = Field(
        -1, ge=-1, description="Number of Byzantine clients; overrides byzantine_fraction when >= 0.")
    f: int = Field(
        -1, ge=-1,
        description="Byzantine updates the defence assumes per round; -1: the expected number among "
                    "num_participants.")


class ServerConfig(Component):
    """The server algorithm (its own keys live in its ``Config``)."""

    gradient_policy: Literal[GRADIENT_POLICIES] | None = Field(
        None,
        description="Federated optimisation rule (empty: fed-avg): fed-prox adds a proximal term to the clients' "
                    "loss, q-fedavg reweights updates by the clients' losses, the others are server rules applied "
                    "to the aggregated update.")


class FedScaleCompat(Component):
    """FedScale's keys this tool accepts so FedScale job files load, with no effect yet."""

    wandb_token: Annotated[str, INACTIVE] = Field("", description="API key for logging to Weights & Biases.")
    this_rank: Annotated[int, INACTIVE] = Field(
        1, description="Rank of a FedScale process, set by FedScale's own launcher.")
    experiment_mode: Annotated[str, INACTIVE] = Field(
        "simulation", description="FedScale's run mode: simulation, or deployment to real devices.")
    engine: Annotated[str, INACTIVE] = Field(
        "pytorch", description="Framework FedScale's aggregator uses: pytorch or tensorflow.")
    executor_configs: Annotated[str, INACTIVE] = Field(
        "127.0.0.1:[1]", description="FedScale's internal copy of worker_ips, written by its launcher.")
    use_cuda: Annotated[bool, INACTIVE] = Field(True, description="Train on a GPU.")
    cuda_device: Annotated[str | None, INACTIVE] = Field(None, description="GPU to train on, e.g. 'cuda:0'.")
    backend: Annotated[str, INACTIVE] = Field(
        "gloo", description="torch.distributed backend of FedScale's earlier transport.")
    task: Annotated[str, INACTIVE] = Field(
        "cv", description="Kind of task in FedScale: cv, nlp, speech, rl, detection, ...")
    train_uniform: Annotated[bool, INACTIVE] = Field(
        False, description="Give every client the same number of training samples.")
    conf_path: Annotated[str, INACTIVE] = Field(
        "~/dataset/", description="Folder of FedScale's auxiliary configuration files.")
    test_ratio: Annotated[float, INACTIVE] = Field(1.0, description="Fraction of the test set used when testing.")
    num_loaders: Annotated[int, INACTIVE] = Field(2, description="Data-loading worker processes per executor.")
    data_cache: Annotated[str, INACTIVE] = Field("", description="File caching the preprocessed data set.")
    num_classes: Annotated[int, INACTIVE] = Field(
        35, description="Number of classes, for data sets that do not fix it themselves.")
    model_zoo: Annotated[Literal["torchcv", "fedscale-torch-zoo", "fedscale-tensorflow-zoo"], INACTIVE] = Field(
        "torchcv", description="Where FedScale loads its models from.")
    input_shape: Annotated[tuple[int, ...], INACTIVE] = Field(
        (1, 3, 28, 28), description="Shape of one input sample.")
    input_dim: Annotated[int, INACTIVE] = Field(0, description="Input width, for models that need it given.")
    output_dim: Annotated[int, INACTIVE] = Field(0, description="Output width, for models that need it given.")
    model_size: Annotated[float, INACTIVE] = Field(
        65536.0, description="Model size assumed by FedScale's communication-time estimate.")
    min_learning_rate: Annotated[float, INACTIVE] = Field(
        5e-05, description="Lowest value the decaying learning rate reaches.")
    decay_factor: Annotated[float, INACTIVE] = Field(
        0.98, description="Factor applied to the learning rate every decay_round rounds.")
    decay_round: Annotated[float, INACTIVE] = Field(10.0, description="Rounds between learning-rate decays.")
    dump_epoch: Annotated[int, INACTIVE] = Field(10000000000, description="Rounds between FedScale's model dumps.")
    weight_decay: Annotated[float, INACTIVE] = Field(0.0, description="Weight decay of the local optimiser.")
    adam_epsilon: Annotated[float, INACTIVE] = Field(1e-08, description="Epsilon of the Adam optimiser.")
    loss_decay: Annotated[float, INACTIVE] = Field(
        0.2, description="Oort: weight of past losses in a client's utility.")
    exploration_alpha: Annotated[float, INACTIVE] = Field(
        0.3, description="Oort: weight of the staleness bonus in a client's score.")
    max_concurrency: Annotated[int, INACTIVE] = Field(
        10, description="Asynchronous FL: clients training at the same time.")
    max_staleness: Annotated[int, INACTIVE] = Field(
        5, description="Asynchronous FL: largest staleness, in rounds, of an accepted update.")
    noise_factor: Annotated[float, INACTIVE] = Field(
        0.1, description="Differential privacy: noise scale relative to the clipping threshold.")
    clip_threshold: Annotated[float, INACTIVE] = Field(
        3.0, description="Differential privacy: L2 bound updates are clipped to.")
    target_delta: Annotated[float, INACTIVE] = Field(0.0001, description="Differential privacy: target delta.")
    malicious_factor: Annotated[int, INACTIVE] = Field(
        1000000000000000, description="One client in this many is malicious.")
    cfg_file: Annotated[str, INACTIVE] = Field(
        "./utils/rcnn/cfgs/res101.yml", description="Detection: Faster R-CNN configuration file.")
    test_output_dir: Annotated[str, INACTIVE] = Field(
        "./logs/server", description="Detection: folder for test outputs.")
    train_size_file: Annotated[str, INACTIVE] = Field(
        "", description="Detection: file of per-client training sample counts.")
    test_size_file: Annotated[str, INACTIVE] = Field(
        "", description="Detection: file of per-client test sample counts.")
    backbone: Annotated[str, INACTIVE] = Field(
        "./resnet50.pth", description="Detection: pretrained backbone weights.")
    embedding_file: Annotated[str, INACTIVE] = Field(
        "glove.840B.300d.txt", description="NLP: word-embedding file.")
    line_by_line: Annotated[bool, INACTIVE] = Field(
        False, description="NLP: treat each line of text as its own sequence.")
    clf_block_size: Annotated[int, INACTIVE] = Field(32, description="NLP: sequence length for classification.")
    mlm: Annotated[bool, INACTIVE] = Field(False, description="NLP: train with a masked-language-model loss.")
    mlm_probability: Annotated[float, INACTIVE] = Field(
        0.15, description="NLP: fraction of tokens masked for the masked-language-model loss.")
    overwrite_cache: Annotated[bool, INACTIVE] = Field(
        False, description="NLP: rebuild the cached training and test sets.")
    block_size: Annotated[int, INACTIVE] = Field(
        64, description="NLP: length of the blocks the tokenised text is cut into.")
    vocab_token_size: Annotated[int, INACTIVE] = Field(10000, description="Tag prediction: token vocabulary size.")
    vocab_tag_size: Annotated[int, INACTIVE] = Field(500, description="Tag prediction: tag vocabulary size.")
    epsilon: Annotated[float, INACTIVE] = Field(0.9, description="RL: probability of the greedy action.")
    gamma: Annotated[float, INACTIVE] = Field(0.9, description="RL: reward discount.")
    memory_capacity: Annotated[int, INACTIVE] = Field(2000, description="RL: replay memory size.")
    target_replace_iter: Annotated[int, INACTIVE] = Field(
        15, description="RL: steps between target-network updates.")
    n_actions: Annotated[int, INACTIVE] = Field(2, description="RL: number of actions.")
    n_states: Annotated[int, INACTIVE] = Field(4, description="RL: size of the state.")
    train_manifest: Annotated[str, INACTIVE] = Field(
        "data/train_manifest.csv", alias="train-manifest", description="Speech: CSV listing the training audio.")
    test_manifest: Annotated[str, INACTIVE] = Field(
        "data/test_manifest.csv", alias="test-manifest", description="Speech: CSV listing the test audio.")
    sample_rate: Annotated[int, INACTIVE] = Field(
        16000, alias="sample-rate", description="Speech: audio sample rate in Hz.")
    labels_path: Annotated[str, INACTIVE] = Field(
        "labels.json", alias="labels-path", description="Speech: file of the characters used in transcripts.")
    window_size: Annotated[float, INACTIVE] = Field(
        0.02, alias="window-size", description="Speech: spectrogram window length in seconds.")
    window_stride: Annotated[float, INACTIVE] = Field(
        0.01, alias="window-stride", description="Speech: spectrogram window step in seconds.")
    window: Annotated[str, INACTIVE] = Field("hamming", description="Speech: spectrogram window function.")
    hidden_size: Annotated[int, INACTIVE] = Field(256, alias="hidden-size", description="Speech: RNN hidden size.")
    hidden_layers: Annotated[int, INACTIVE] = Field(
        7, alias="hidden-layers", description="Speech: number of RNN layers.")
    rnn_type: Annotated[str, INACTIVE] = Field(
        "lstm", alias="rnn-type", description="Speech: RNN cell, rnn, gru or lstm.")
    finetune: Annotated[bool, INACTIVE] = Field(False, description="Speech: continue training from a checkpoint.")
    speed_volume_perturb: Annotated[bool, INACTIVE] = Field(
        False, alias="speed-volume-perturb", description="Speech: randomly perturb tempo and gain.")
    spec_augment: Annotated[bool, INACTIVE] = Field(
        False, alias="spec-augment", description="Speech: apply spectral augmentation.")
    noise_dir: Annotated[str | None, INACTIVE] = Field(
        None, alias="noise-dir", description="Speech: folder of noise to mix into the audio; unset adds none.")
    noise_prob: Annotated[float, INACTIVE] = Field(
        0.4, alias="noise-prob", description="Speech: probability of adding noise to a sample.")
    noise_min: Annotated[float, INACTIVE] = Field(
        0.0, alias="noise-min", description="Speech: lowest noise level (1.0 is noise only).")
    noise_max: Annotated[float, INACTIVE] = Field(
        0.5, alias="noise-max", description="Speech: highest noise level, at most 1.0.")
    no_bidirectional: Annotated[bool, INACTIVE] = Field(
        False, alias="no-bidirectional", description="Speech: use one-directional RNNs.")
