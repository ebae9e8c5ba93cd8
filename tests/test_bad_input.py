"""Bad job files, all of them refused before anything starts: one line naming the file and the
key, exit code 2 from the driver, no run folder and no process. Each value below passed the parse
once and failed later (or hung, or flooded), or made YAML loading blow up."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedscale.cloud.config_parser import MAX_JOB_BYTES, ConfigError, load_job
from fedscale.cloud.preflight import preflight
from fedscale.dataloaders.catalog import TRAINING_SET_SIZES
from fedscale.dataloaders.femnist import MAPPING_DIR, write_femnist_fixture
from tests.jobs import run_dirs, run_driver, write_job

LOL = '["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'


def _alias_bomb(levels: int) -> str:
    """A job whose rounds value holds 10 ** (levels + 1) strings through shared aliases."""
    shared = ", ".join(f"&l{level} [{', '.join([f'*l{level - 1}'] * 10)}]" for level in range(1, levels + 1))
    return f"job_conf:\n  - rounds: [&l0 {LOL}, {shared}]\n"


# (name, text of the job file, what the one-line error must contain)
YAML_CASES = [
    ("oversized", "job_conf:\n" + "# padding\n" * (MAX_JOB_BYTES // 10), "larger than 1048576 bytes"),
    ("alias_bomb", _alias_bomb(7), "more than 100000 values once its aliases are expanded"),
    ("deep_flow", "job_conf: " + "[" * 100_000 + "]" * 100_000 + "\n", "line 1: YAML nested deeper than 32"),
    ("deep_block", "".join("  " * depth + f"k{depth}:\n" for depth in range(100)), "YAML nested deeper than 32"),
    ("recursive_alias", "job_conf: &a [*a]\n", "alias refers to the collection it is in"),
    ("huge_integer", "job_conf:\n  - rounds: " + "9" * 5000 + "\n", "line 2: expected a value YAML can read"),
    ("bad_date", "job_conf:\n  - job_name: 2023-13-45\n", "line 2: expected a value YAML can read, got '2023-13-45'"),
]


@pytest.mark.parametrize(("name", "text", "expected"), YAML_CASES, ids=[case[0] for case in YAML_CASES])
def test_hostile_yaml_is_one_line_naming_the_file(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / f"{name}.yml"
    path.write_text(text)
    message = _refusal(path)
    assert message.startswith(f"{path}: ") and expected in message, message


def test_an_error_quotes_a_bounded_excerpt_of_a_value_shared_by_aliases(tmp_path: Path) -> None:
    path = tmp_path / "job.yml"
    path.write_text(_alias_bomb(3))
    message = _refusal(path)
    assert "job_conf.rounds: expected an integer" in message and len(message) < 300, message


# (name, job_conf changes, top-level changes, the key the one line must name)
BOUND_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("executors_on_one_host", {}, {"worker_ips": ["127.0.0.1:[1000000]"]}, "worker_ips[0]: expected at most 64"),
    ("executor_digits", {}, {"worker_ips": ["127.0.0.1:[" + "9" * 5000 + "]"]}, "worker_ips[0]: expected at most 64"),
    ("executors_in_all", {}, {"worker_ips": [f"10.0.0.{host}:[64]" for host in range(17)]},
     "worker_ips: expected at most 1024 executor processes in all, got 1088"),
    ("torch_threads", {"torch_threads": 1_000_000}, {}, "job_conf.torch_threads: expected an integer >= 1 and <= 256"),
    ("local_steps", {"local_steps": 3_000_000_000}, {}, "job_conf.local_steps: expected"),
    ("batch_size", {"batch_size": 10**9}, {}, "job_conf.batch_size: expected"),
    ("test_bsz", {"test_bsz": 10**12}, {}, "job_conf.test_bsz: expected"),
    ("rounds", {"rounds": 10**12}, {}, "job_conf.rounds: expected"),
    ("eval_interval", {"eval_interval": 10**12}, {}, "job_conf.eval_interval: expected"),
    ("budget_recheck_steps", {"adaptive_training": True, "budget_recheck_steps": 3_000_000_000}, {},
     "job_conf.budget_recheck_steps: expected"),
    ("t_budget", {"adaptive_training": True, "t_budget": 1e300}, {}, "job_conf.t_budget: expected"),
    ("learning_rate", {"learning_rate": 1e300}, {}, "job_conf.learning_rate: expected"),
    ("executor_timeout", {"executor_timeout": 1e12}, {}, "job_conf.executor_timeout: expected"),
    ("heartbeat_interval", {"heartbeat_interval": 1e-6}, {}, "job_conf.heartbeat_interval: expected a number >= 0.05"),
    ("connection_timeout", {"connection_timeout": 1}, {}, "job_conf.connection_timeout: expected an integer >= 10"),
    ("overcommitment", {"overcommitment": 1e9}, {}, "job_conf.overcommitment: expected a number >= 1 and <= 100"),
    ("num_clients", {"num_clients": 10**9}, {}, "job_conf.num_clients: expected"),
    ("num_clients_over_digits", {"num_clients": 5000}, {},
     "job_conf.num_clients: expected at most the 1437 training samples of digits, got 5000"),
    ("participants_over_clients", {"num_participants": 500, "num_clients": 100}, {},
     "job_conf.num_participants: expected at most num_clients (100)"),
    ("filter_less", {"filter_less": 1_000_000}, {}, "job_conf.filter_less: leaves 0 of 20 clients"),
    ("filter_more", {"filter_more": 5}, {}, "job_conf.filter_more: leaves 0 of 20 clients"),
    ("byzantine_fraction", {"byzantine_fraction": 0.6, "aggregator": "krum", "attack": "sign_flip"}, {},
     "job_conf.aggregator='krum' cannot aggregate"),
    ("num_byzantine", {"num_byzantine": 30}, {}, "job_conf.num_byzantine=30 exceeds"),
]


@pytest.mark.parametrize(("name", "conf", "top", "expected"), BOUND_CASES, ids=[case[0] for case in BOUND_CASES])
def test_impossible_values_are_refused_before_launch_naming_the_key(tmp_path: Path, name: str, conf: dict[str, Any],
                                                                    top: dict[str, Any], expected: str) -> None:
    path = _job_file(tmp_path, conf, top)
    message = _refusal(path)
    assert message.startswith(f"{path}: ") and expected in message, message


def _bad_map(tmp_path: Path, rows: str) -> dict[str, Any]:
    csv = tmp_path / "map.csv"
    csv.write_text("client_id,sample_path,label_name,label_id\n" + rows)
    return {"data_map_file": str(csv)}


MAP_CASES = [
    ("not_an_index", "a,0,x,0\nb,y,z,w\n", "job_conf.data_map_file: {csv}:3: expected a non-negative integer sample_path, got 'y'"),
    ("index_out_of_range", "a,0,x,0\nb,1437,x,0\n", "job_conf.data_map_file: {csv}:3: expected sample_path below 1437"),
    ("repeated_index", "a,0,x,0\nb,0,x,0\n", "job_conf.data_map_file: {csv}:3: expected each sample_path at most once"),
    ("short_row", "a,0,x,0\nb,1\n", "job_conf.data_map_file: {csv}:3: expected 4 fields"),
    ("too_few_clients", "a,0,x,0\nb,1,x,0\n", "job_conf.num_participants: expected at most the 2 clients of the data, got 6"),
]


@pytest.mark.parametrize(("name", "rows", "expected"), MAP_CASES, ids=[case[0] for case in MAP_CASES])
def test_a_bad_data_map_file_is_refused_naming_the_file_and_line(tmp_path: Path, name: str, rows: str,
                                                                 expected: str) -> None:
    settings = _bad_map(tmp_path, rows)
    message = _refusal(_job_file(tmp_path, settings, {}))
    assert expected.format(csv=settings["data_map_file"]) in message, message


def test_femnist_writers_are_counted_from_the_mapping_files(tmp_path: Path) -> None:
    root = Path(write_femnist_fixture(tmp_path / "femnist", num_clients=3, samples_per_client=2, seed=0))
    femnist = {"data_set": "femnist", "data_dir": str(root), "num_participants": 2}
    assert preflight(load_job(str(_job_file(tmp_path, femnist, {})))).fleet.num_clients > 0
    message = _refusal(_job_file(tmp_path, {**femnist, "num_participants": 4}, {}))
    assert "job_conf.num_participants: expected at most the 3 clients of the data, got 4" in message, message
    train = root / MAPPING_DIR / "train.csv"
    train.write_text(re.sub(r",\d+\n$", ",six\n", train.read_text()))
    message = _refusal(_job_file(tmp_path, femnist, {}))
    assert f"job_conf.data_dir: {train}:" in message and "expected a non-negative integer label_id" in message, message


def test_valid_data_maps_and_filters_pass(tmp_path: Path) -> None:
    rows = "".join(f"c{sample % 8},{sample},x,0\n" for sample in range(80))
    preflight(load_job(str(_job_file(tmp_path, _bad_map(tmp_path, rows), {}))))
    preflight(load_job(str(_job_file(tmp_path, {"partition": "dirichlet", "filter_less": 20, "num_participants": 2}, {}))))


def test_the_catalogue_knows_the_digits_training_set_size() -> None:
    from fedscale.dataloaders.digits import load_digits
    assert len(load_digits(seed=0)[0]) == len(load_digits(seed=7)[0]) == TRAINING_SET_SIZES["digits"]


DRIVER_CASES = [
    ("executors_on_one_host", lambda tmp: _job_file(tmp, {}, {"worker_ips": ["127.0.0.1:[1000000]"]}), "worker_ips[0]"),
    ("alias_bomb", lambda tmp: _write(tmp / "bomb.yml", _alias_bomb(8)), "aliases are expanded"),
    ("deep_nesting", lambda tmp: _write(tmp / "deep.yml", "job_conf: " + "[" * 50_000 + "]" * 50_000), "nested deeper"),
    ("filter_less", lambda tmp: _job_file(tmp, {"filter_less": 1_000_000}, {}), "job_conf.filter_less"),
    ("data_map_file", lambda tmp: _job_file(tmp, _bad_map(tmp, "a,0,x,0\nb,y,z,w\n"), {}), "job_conf.data_map_file"),
]


@pytest.mark.parametrize(("name", "make", "key"), DRIVER_CASES, ids=[case[0] for case in DRIVER_CASES])
def test_submit_refuses_with_exit_2_and_one_line_before_any_process(tmp_path: Path, name: str, make: Any,
                                                                     key: str) -> None:
    path = make(tmp_path)
    done = run_driver(tmp_path, "submit", str(path), timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert str(path) in lines[0] and key in lines[0], lines[0]
    assert not run_dirs(tmp_path) and not (tmp_path / "logs").exists()


def _job_file(tmp_path: Path, conf: dict[str, Any], top: dict[str, Any]) -> Path:
    """SMALL_JOB on one executor with ``conf``; top-level keys replaced by ``top``."""
    path = write_job(tmp_path, executors=1, **conf)
    if top:
        job = yaml.safe_load(path.read_text())
        path.write_text(json.dumps({**job, **top}))
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _refusal(path: Path) -> str:
    """The one-line ConfigError that loading and preflighting the job at ``path`` raises."""
    with pytest.raises(ConfigError) as caught:
        preflight(load_job(str(path)))
    message = str(caught.value)
    assert "\n" not in message
    return message
