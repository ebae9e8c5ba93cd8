"""The configuration of each part of the runtime, as typed, immutable models.

Each class declares the job_conf keys one component reads (``fedscale.cloud.config.keys``
says how a field becomes a key); ``JobConf`` composes them, together with the selectors' and
server algorithms' own ``Config`` models, into the job's configuration. Cross-key rules of a
component live on it as validators; a rule that spans components lives on ``JobConf``.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, create_model, model_validator

from fedscale.cloud.aggregation.server_algorithms import SERVER_ALGORITHMS
from fedscale.cloud.config.keys import INACTIVE, PATH, Aliases, Check, Component, ConfigError
from fedscale.dataloaders.catalog import DATA_DIR_CONTENTS, DATA_SETS, MODEL_NAMES, PARTITIONS, TRAINING_SET_SIZES
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
    """The job's name and where its logs and metrics go."""

    job_name: Annotated[str, NAME] = Field(
        "demo_job", description="Name of the job; its logs go to <log root>/logs/<job_name>/<time_stamp>/.")
    time_stamp: Annotated[str, OPTIONAL_NAME] = Field(
        "", description="Name of this run's log folder; empty lets the driver derive one from the start time.")
    log_path: Annotated[str, PATH] = Field("", description="Root folder for logs; empty means exp_path.")
    wandb_token: str = Field(
        "", description="Weights & Biases API key: the aggregator logs the job to one W&B run (also when "
                        "WANDB_API_KEY or WANDB_MODE is set). It reaches the aggregator in its environment, "
                        "never in a file or a command line.")


class Cluster(Component):
    """The aggregator's address, the executor processes and their liveness timing."""

    ps_ip: Annotated[str, HOST] = Field(
        "127.0.0.1", description="Address of the aggregator; the top-level ps_ip takes precedence.")
    ps_port: int = Field(
        29500, ge=0, le=65535,
        description="Aggregator's port; 0 picks a free one. The top-level ps_port takes precedence.")
    connection_timeout: int = Field(
        60, ge=10, le=86400,
        description="Seconds the aggregator waits for the executors to register (at least 10, the time an "
                    "executor takes to start).")
    executor_timeout: float = Field(
        5.0, gt=0, le=3600,
        description="Seconds without a heartbeat after which an executor is declared dead and its clients are "
                    "dropped or moved.")
    heartbeat_interval: float = Field(
        1.0, ge=0.05, description="Seconds between an executor's heartbeats; below executor_timeout.")
    executor_restarts: int = Field(
        3, ge=0, le=100,
        description="Times the driver restarts each local executor that exits during the job; a restarted "
                    "executor rejoins the running job, and with no executor left the aggregator waits up to "
                    "connection_timeout for one. 0 turns both off.")
    num_executors: int = Field(1, ge=1, description="Executor processes in total; always derived from worker_ips.")
    torch_threads: int = Field(
        1, ge=1, le=256, description="Torch threads in each executor process and in the aggregator.")
    in_process_executor: bool = Field(
        True, description="A job run on this machine (local launcher) trains executor-1's clients in the "
                          "aggregator's process, with no RPC per round, and starts the other executors as processes; "
                          "false starts executor-1 as a process too (restarted when it exits, with its own console "
                          "output and telemetry service).")

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
        description="Data set: digits (scikit-learn's bundled 8x8 digits), or femnist, cifar10, openImg or "
                    "google_speech (FedScale's files under data_dir), or the text sets for language models, reddit "
                    "(alias blog) and stackoverflow.")
    data_dir: Annotated[str, PATH] = Field(
        "", description="Folder holding the data set's files in FedScale's layout; required for all but digits.")
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
        100, ge=1, le=1_000_000,
        description="Clients the training set is split into when no data_map_file is given; at most the training "
                    "set's size.")

    @model_validator(mode="after")
    def _files_exist(self) -> DataConfig:
        if self.data_set in DATA_DIR_CONTENTS:
            if not self.data_dir:
                raise ConfigError(f"required when data_set is {self.data_set!r}: the folder holding "
                                  f"{DATA_DIR_CONTENTS[self.data_set]}", "job_conf.data_dir")
            require_existing("data_dir", self.data_dir, directory=True)
        if self.data_map_file:
            require_existing("data_map_file", self.data_map_file, directory=False)
        return self

    @model_validator(mode="after")
    def _clients_fit_the_data(self) -> DataConfig:
        size = TRAINING_SET_SIZES.get(self.data_set)
        if not self.data_map_file and size is not None and self.num_clients > size:
            raise ConfigError(f"expected at most the {size} training samples of {self.data_set}, "
                              f"got {self.num_clients}", "job_conf.num_clients")
        return self


class TrainingConfig(Component):
    """The model and the clients' local training; the rounds, their size and when to test."""

    model: Literal[MODEL_NAMES] = Field(
        "mlp", description="Model: logistic, mlp or cnn (small), resnet18/34/50, mobilenet_v2, shufflenet_v2_x0_5 to "
                           "x2_0 (sized by the data set's images), or the language models lstm, albert-base-v2, "
                           "transformer-small (for text data sets).")
    learning_rate: float = Field(0.05, gt=0, le=1e30, description="Client learning rate (at most 1e30, which a float32 model still holds).")
    local_steps: int = Field(20, ge=1, le=1_000_000, description="Local training steps per client per round.")
    batch_size: int = Field(30, ge=1, le=1_000_000, description="Training batch size.")
    seed: Annotated[int, Aliases("sample_seed")] = Field(
        233, ge=0, le=2**32 - 1, description="Seed for data splitting, client selection and model initialisation.")
    rounds: int = Field(50, ge=1, le=1_000_000, description="Training rounds to run.")
    num_participants: Annotated[int, Aliases("async_buffer")] = Field(
        4, ge=1, le=1_000_000,
        description="Clients aggregated per round; in an asynchronous job, the updates buffered per aggregation step "
                    "(FedBuff's K), as FedScale's async aggregator reads num_participants.")
    max_virtual_time: float = Field(
        0.0, ge=0,
        description="Stop after the round that reaches this many virtual seconds (0: no limit), so policies can be "
                    "compared on equal simulated time.")
    eval_interval: int = Field(5, ge=1, le=1_000_000, description="Test the global model every this many rounds.")
    test_bsz: int = Field(128, ge=1, le=1_000_000, description="Testing batch size.")
    save_checkpoint: bool = Field(True, description=(
        "Save a checkpoint the job can be resumed from (driver.py resume <run folder>) every checkpoint_interval "
        "rounds and after the last; asynchronous jobs write none."))
    checkpoint_interval: int = Field(1, ge=1, le=1_000_000,
                                     description="Rounds between checkpoints when save_checkpoint is on.")


class FleetConfig(Component):
    """The device fleet, its traces, and the time model that turns them into round durations
    (download, compute, upload; ``fedscale.cloud.time_model``; ``clock_factor`` scales all three)."""

    clients_file: Annotated[str, PATH] = Field(
        "",
        description="Device fleet (.npz or .json of this tool); empty: the small generated fleet that ships with "
                    "it.")
    device_conf_file: Annotated[str, PATH] = Field(
        "",
        description="Client device capacities in FedScale's client_device_capacity pickle; overrides clients_file.")
    device_avail_file: Annotated[str, PATH] = Field(
        "", description="Client availability in FedScale's client_behave_trace pickle, with device_conf_file.")
    filter_less: int = Field(1, ge=0, description="Clients with fewer training samples than this never take part.")
    filter_more: int = Field(
        1000000000000000, ge=1, description="Clients with more training samples than this never take part.")
    overcommitment: float = Field(
        1.3, ge=1, le=100,
        description="Clients selected per round, as a multiple of those aggregated; the fastest are kept.")
    time_model: Literal["fedscale", "dynamic"] = Field(
        "fedscale",
        description="Round time model. fedscale: FedScale's formula on the measured capacities (compute 3 x batch x "
                    "steps x latency, communication (upload + download) / bandwidth on a symmetric link, a client "
                    "counts if online at its finish time). dynamic: the same capacities modulated by the fleet's "
                    "bandwidth and free-CPU traces (each rescaled to mean 1), uplink = downlink x reduction_factor, "
                    "a client counts only if online throughout its round.")
    model_size: float | None = Field(
        None, gt=0,
        description="Model size the time model times each download and upload for, in FedScale's kilobits (bytes x 8 "
                    "/ 1024; a ResNet-18's 44.7 MB is 349,000), so a small model can be trained on links timed for a "
                    "large one; partial uploads are charged the same fraction of it. Unset: the trained model's size.")
    clock_factor: float = Field(
        1.0, gt=0,
        description="Multiplier on each client's whole simulated round time (download, compute and upload); to scale "
                    "compute alone, scale augmentation_factor.")
    augmentation_factor: float = Field(
        3.0, gt=0,
        description="Simulated compute per training sample, in units of the device's per-sample inference latency "
                    "(forward plus backward).")
    reduction_factor: float = Field(
        0.5, gt=0,
        description="Uplink bandwidth as a fraction of the downlink (Bliss's asymmetric link); time_model dynamic "
                    "only (fedscale's link is symmetric).")

    @model_validator(mode="after")
    def _files_exist(self) -> FleetConfig:
        for key in ("clients_file", "device_conf_file", "device_avail_file"):
            if getattr(self, key):
                require_existing(key, getattr(self, key), directory=False)
        if self.device_avail_file and not self.device_conf_file:
            raise ConfigError("needs device_conf_file (FedScale's device capacities) as well",
                              "job_conf.device_avail_file")
        return self

    @model_validator(mode="after")
    def _link_fits_time_model(self) -> FleetConfig:
        if self.time_model == "fedscale" and self.reduction_factor != type(self).model_fields["reduction_factor"].default:
            raise ConfigError("applies to time_model dynamic only (fedscale's link is symmetric)",
                              "job_conf.reduction_factor")
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
        300.0, gt=0, le=86400,
        description="Seconds a round allows each client for download, compute and upload (Bliss's pacer moves it).")
    ewma_lambda: float = Field(
        0.7, ge=0, lt=1, description="Adaptive training: weight of the past in the client's running estimates.")
    min_payload_frac: float = Field(
        0.3, gt=0, le=1, description="Adaptive training: smallest fraction of the update uploaded.")
    budget_recheck_steps: int = Field(
        5, ge=1, le=1_000_000, description="Adaptive training: steps per chunk between budget checks.")
    run_phase_2: bool = Field(
        True,
        description="Adaptive training: after the coarse fill, trade further steps against upload size one step at "
                    "a time.")


class AsyncConfig(Component):
    """Buffered asynchronous aggregation (FedBuff), for a job whose aggregator_entry is
    async_aggregator.py; its buffer is num_participants (``fedscale.cloud.aggregation.fedbuff``)."""

    max_concurrency: int = Field(
        10, ge=1, le=1_000_000,
        description="Asynchronous jobs: clients training at the same time (FedBuff's concurrency); each freed slot "
                    "goes to a newly selected client.")
    max_staleness: int = Field(
        5, ge=0, le=1_000_000,
        description="Asynchronous jobs: largest staleness (aggregation steps taken since the client's model) of an "
                    "update that is aggregated; staler updates are discarded.")


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


def _compat_field(kind: str, default: Any, help_text: str, key: str) -> tuple[Any, Any]:
    """One row of ``fedscale_compat.tsv`` as a pydantic field: ``kind`` is int, float, bool, str,
    list[int], or the allowed values ``a|b|c`` (one alone too), with ``?`` appended when null is allowed."""
    nullable = kind.endswith("?")
    kind = kind.removesuffix("?")
    types = {"int": int, "float": float, "bool": bool, "str": str, "list[int]": tuple[int, ...]}
    annotation: Any = types.get(kind) or Literal[tuple(kind.split("|"))]
    if nullable:
        annotation = annotation | None
    default = tuple(default) if isinstance(default, list) else default
    alias = key if not key.isidentifier() else None
    return Annotated[annotation, INACTIVE], Field(default, alias=alias, description=help_text)


def _fedscale_compat() -> type[Component]:
    """The model of FedScale's keys this tool accepts with no effect yet, from the catalogue
    ``fedscale_compat.tsv`` (key, type, JSON default, help): keys with no reader are data, and a
    key moves into its component's model when something starts to act on it."""
    rows = csv.DictReader(io.StringIO((Path(__file__).parent / "fedscale_compat.tsv").read_text(encoding="utf-8")),
                          delimiter="\t", quoting=csv.QUOTE_NONE)
    fields = {row["key"].replace("-", "_"): _compat_field(row["type"], json.loads(row["default"]), row["help"],
                                                          row["key"]) for row in rows}
    return create_model("FedScaleCompat", __base__=Component, __doc__=_fedscale_compat.__doc__, **fields)


FedScaleCompat = _fedscale_compat()
