"""Typed configuration: components declare the keys, every bad value is one line before launch,
and what a job builds is built while it is validated."""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import socket
from pathlib import Path
from typing import Any

import pytest

from fedscale.cloud.config.components import RobustnessConfig
from fedscale.cloud.config.job_conf import ALGORITHM_CONFIGS, COMPONENTS, SELECTOR_CONFIGS
from fedscale.cloud.config.keys import KeySpec, key_specs
from fedscale.cloud.config_parser import KEYS, ConfigError, JobConf, load_job
from fedscale.cloud.preflight import preflight
from fedscale.deploy.local import is_local_host
from tests.jobs import run_dirs, run_driver, write_job


def _wrong_type(spec: KeySpec) -> Any:
    return {int: "abc", float: "abc", bool: "maybe", str: {"a": 1}, tuple: [1, "x"]}[spec.type]


def _out_of_range(spec: KeySpec) -> Any:
    """A value of the right type that the key refuses, or None when every such value is allowed."""
    if spec.choices:
        return "not-a-choice"
    if spec.ge is not None:
        return spec.ge - 1
    if spec.gt is not None:
        return spec.gt
    if spec.le is not None:
        return spec.le + 1
    if spec.lt is not None:
        return spec.lt
    if spec.check is not None:
        return "bad value with spaces/and/slashes+(("
    return None


def _refusal(tmp_path: Path, key: str, value: Any) -> str:
    path = tmp_path / "job.yml"
    path.write_text(json.dumps({"job_conf": [{key: value}]}))
    with pytest.raises(ConfigError) as caught:
        load_job(str(path))
    return str(caught.value).removeprefix(f"{path}: ")


@pytest.mark.parametrize("key", sorted(KEYS))
def test_every_key_refuses_a_wrong_type_and_an_out_of_range_value_in_one_line(tmp_path: Path, key: str) -> None:
    spec = KEYS[key]
    values = [_wrong_type(spec)] + ([] if _out_of_range(spec) is None else [_out_of_range(spec)])
    for value in values:
        message = _refusal(tmp_path, key, value)
        assert message.startswith(f"job_conf.{key}: expected "), message
        assert "\n" not in message


def test_every_key_is_declared_by_a_component_a_selector_or_a_server_algorithm() -> None:
    models = [model for _, model in COMPONENTS] + [*SELECTOR_CONFIGS.values(), *ALGORITHM_CONFIGS.values()]
    assert {spec.name for model in models for spec in key_specs(model)} == set(KEYS)
    conf = JobConf()
    for name, model in COMPONENTS:
        component = getattr(conf, name)
        assert isinstance(component, model)
        assert all(component.model_dump(by_alias=True)[spec.name] == spec.default for spec in key_specs(model))


@pytest.mark.parametrize(("sample_mode", "gradient_policy"), [("bliss", "fed-yogi"), ("pyramidfl", "q-fedavg")])
def test_the_job_carries_its_selectors_and_server_algorithms_typed_config(sample_mode: str,
                                                                          gradient_policy: str) -> None:
    conf = JobConf({"sample_mode": sample_mode, "gradient_policy": gradient_policy, "pacer_step": 7})
    assert type(conf.selector) is SELECTOR_CONFIGS[sample_mode] and conf.selector.pacer_step == 7
    assert type(conf.server_algorithm) is ALGORITHM_CONFIGS[gradient_policy]


def test_components_are_typed_and_immutable() -> None:
    conf = JobConf({"learning_rate": "0.1", "rounds": "7", "sample_seed": 3})
    assert (conf.training.learning_rate, conf.training.rounds, conf.training.seed) == (0.1, 7, 3)
    assert conf.compat.train_manifest == conf["train-manifest"]
    with pytest.raises(Exception, match="frozen"):
        conf.training.rounds = 3


@pytest.mark.parametrize(("conf", "expected"), [
    ({"heartbeat_interval": 9}, "job_conf.heartbeat_interval: expected a number below executor_timeout"),
    ({"device_avail_file": __file__}, "job_conf.device_avail_file: needs device_conf_file"),
    ({"sample_mode": "pyramidfl", "dropout_low": 0.5, "dropout_high": 0.2},
     "job_conf.dropout_low: expected at most dropout_high"),
    ({"sample_mode": "bliss", "bliss_min_train": 50, "amount_clients_predict_train_set": 30},
     "job_conf.amount_clients_predict_train_set: expected at least bliss_min_train (50), got 30"),
])
def test_rules_between_keys_name_the_key(conf: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        JobConf(conf)
    assert str(caught.value).startswith(expected)


def _job(tmp_path: Path, **conf: Any):
    return load_job(str(write_job(tmp_path, executors=1, **conf)))


def test_preflight_reads_the_fleet_and_refuses_a_malicious_pickle_without_running_it(tmp_path: Path) -> None:
    assert preflight(_job(tmp_path)).fleet.num_clients == 50
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    capacity = tmp_path / "capacity.pkl"
    capacity.write_bytes(pickle.dumps({1: {"computation": 1.0, "communication": 1.0, "x": Exploit()}}))
    job = _job(tmp_path, device_conf_file=str(capacity))
    with pytest.raises(ConfigError) as caught:
        preflight(job)
    assert str(caught.value).startswith(f"{job.source}: job_conf.device_conf_file: ")
    assert "refusing" in str(caught.value) and not marker.exists()


def test_preflight_refuses_a_busy_port_naming_ps_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        path = write_job(tmp_path, executors=1)
        path.write_text(path.read_text().replace("ps_port: 0", f"ps_port: {busy.getsockname()[1]}"))
        with pytest.raises(ConfigError, match=r"job\.yml: ps_port: cannot listen on 127\.0\.0\.1:\d+ "):
            preflight(load_job(str(path)))


def test_a_malicious_pickle_is_refused_by_submit_before_any_process(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    capacity = tmp_path / "capacity.pkl"
    capacity.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    done = run_driver(tmp_path, "submit", str(write_job(tmp_path, executors=1, device_conf_file=str(capacity))))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "job_conf.device_conf_file" in lines[0] and "refusing" in lines[0], done.stderr
    assert not marker.exists() and not run_dirs(tmp_path)


EXAMPLE_JOBS = sorted(str(path) for pattern in ("benchmark/configs/**/*.yml", "fedscale/jobs/*.yml", "tests/golden/*.yml")
                      for path in Path(__file__).resolve().parent.parent.glob(pattern))


@pytest.mark.parametrize("path", EXAMPLE_JOBS)
def test_every_example_job_builds_its_parts_at_validation(path: str) -> None:
    job = load_job(path)
    if not is_local_host(job.ps_ip):  # an SSH example's aggregator address is another machine's
        job = dataclasses.replace(job, ps_ip="127.0.0.1", conf=job.conf.replace(ps_ip="127.0.0.1"))
    built = preflight(job)
    assert type(built.selector).Config is type(job.conf.selector)
    assert built.server_algorithm.name == (job.conf.server.gradient_policy or "fed-avg")
    assert type(built.server_algorithm).Config is type(job.conf.server_algorithm)
    assert built.fleet.num_clients > 0
    assert (built.threat is not None) == (job.conf.robustness != RobustnessConfig())
    assert built.threat is None or built.threat.aggregator_spec == job.conf.robustness.aggregator


@pytest.mark.parametrize(("conf", "expected"), [
    ({"sample_mode": "oort", "exploration_min": 0.95}, "job_conf.exploration_min: expected at most exploration_factor"),
    ({"sample_mode": "oort", "blacklist_rounds": 0}, "job_conf.blacklist_rounds: "),
    ({"sample_mode": "oort", "round_threshold": 150}, "job_conf.round_threshold: "),
    ({"byzantine_fraction": 0.2, "attack": "little", "aggregator": "krum", "num_participants": 4, "num_clients": 20},
     "job_conf.aggregator='krum' cannot aggregate"),
    ({"num_byzantine": 30, "num_clients": 20, "num_participants": 4}, "job_conf.num_byzantine=30 exceeds"),
])
def test_values_a_component_refuses_are_refused_before_launch(tmp_path: Path, conf: dict[str, Any],
                                                              expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        preflight(load_job(str(write_job(tmp_path, executors=1, **conf))))
    assert expected in str(caught.value) and "\n" not in str(caught.value)
