"""FedScale's example job files (``tests/fedscale_examples.py``) here: each file either runs, shrunk
to a few seconds, to a completed JOB_END, or is refused before anything starts in one line naming
the key and the value that are not supported here. ``OUTCOMES`` says which, for every file; the
README's table "FedScale's example jobs here" says the same.

Every host a file names becomes 127.0.0.1 first (nothing else is ever contacted; hosts repeated by
the rewrite add up their processes, as FedScale allows). ``$FEDSCALE_HOME`` is a folder here
holding small synthetic data sets and device traces at the paths FedScale's files name, in
FedScale's layouts (its container files' ``/FedScale/benchmark`` is ``$FEDSCALE_HOME/benchmark``,
their ``data_path``), so no data path in a file is changed. A run changes only sizes (``SIZES``,
two executors, a free port); container files run with the local launcher."""
from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedscale.cloud import commons
from fedscale.cloud.config_parser import ConfigError, JobSpec, load_job
from fedscale.dataloaders.cifar10 import write_cifar10_fixture
from fedscale.dataloaders.femnist import write_femnist_fixture
from fedscale.dataloaders.google_speech import write_google_speech_fixture
from fedscale.dataloaders.open_images import write_open_images_fixture
from fedscale.dataloaders.text import write_text_fixture
from fedscale.deploy.submit import run_to_end
from tests.fedscale_examples import EXAMPLES
from tests.jobs import ROOT

LOOPBACK = "127.0.0.1"
# two, as FedScale's docker files list three ports: the aggregator's and two executors'
EXECUTORS = 2
# what a run changes: sizes, set where the file has them and added where it has none
SIZES: dict[str, Any] = {"rounds": 2, "eval_interval": 1, "num_clients": 4, "num_participants": 2, "local_steps": 1,
                         "batch_size": 4, "test_bsz": 8}
# FedScale's data folder under $FEDSCALE_HOME (its container files' /FedScale/benchmark/dataset/data)
DATA = Path("benchmark", "dataset", "data")
# 24 samples each: more than the filter_less of 21 that FedScale's femnist, speech and openImg jobs set
FIXTURE_CLIENTS, SAMPLES_PER_CLIENT = 4, 24


@dataclass(frozen=True)
class Refused:
    """A file refused in one line naming ``key`` and its ``value``: by ``load_job``, or, with
    ``at_checks``, by the checks ``submit`` makes before any process starts."""

    key: str
    value: str
    at_checks: bool = False


RUNS, SLOW = "runs", "runs, slow"  # SLOW: runs under -m slow only (the heavier models and inputs)
OUTCOMES: dict[str, str | Refused] = {
    "android/mnn.yml": Refused("aggregator_entry", "aggregation/aggregator_mnn.py"),
    "android/tflite.yml": Refused("aggregator_entry", "aggregation/aggregator_tflite.py"),
    "auxo/auxo.yml": Refused("executor_entry", "examples/auxo/executor.py"),
    "cifar_cpu/cifar_cpu.yml": RUNS,
    "docker_deploy/cifar_cpu_docker.yml": RUNS,
    "docker_deploy/dry_run_docker.yml": RUNS,
    "docker_deploy/femnist_docker.yml": RUNS,
    "dry_run/dry_run.yml": Refused("executor_entry", "../../examples/dry_run/customized_executor.py"),
    "fedbuff_femnist/conf.yml": RUNS,
    "femnist/conf.yml": RUNS,
    "k8s_deploy/cifar_cpu_k8s.yml": RUNS,
    "k8s_deploy/dry_run_k8s.yml": RUNS,
    "k8s_deploy/femnist_k8s.yml": RUNS,
    "openimage/openimage.yml": SLOW,
    "others/heterofl.yml": Refused("executor_entry", "customized_executor.py"),
    "others/local_dp.yml": Refused("executor_entry", "$FEDSCALE_HOME/examples/localDP/customized_executor.py"),
    "others/rl_conf.yml": Refused("job_conf.model", "dqn"),
    "reddit/reddit.yml": RUNS,
    "speech/google_speech.yml": SLOW,
    "tf_cifar/tf_cifar.yml": Refused("job_conf.engine", "tensorflow"),
    "tf_femnist/tf_femnist.yml": Refused("job_conf.engine", "tensorflow"),
}


def write_device_traces(folder: Path, num_devices: int) -> None:
    """FedScale's two device-trace pickles, of plain dicts as FedScale's are:
    ``client_device_capacity`` (ms per sample, kbps) and ``client_behave_trace`` (every device
    online throughout, so that a run's clients never drop out)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = range(1, num_devices + 1)
    traces = {
        "client_device_capacity": {i: {"computation": 40.0 + i, "communication": 10_000.0} for i in ids},
        "client_behave_trace": {i: {"active": [0], "inactive": [10 ** 6], "finish_time": 10 ** 6,
                                    "duration": 10 ** 6, "model": "SM-G930F"} for i in ids},
    }
    for name, trace in traces.items():
        (folder / name).write_bytes(pickle.dumps(trace))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A $FEDSCALE_HOME holding every data set and trace FedScale's example files name."""
    home = tmp_path_factory.mktemp("fedscale_home")
    data = home / DATA
    write_femnist_fixture(data / "femnist", FIXTURE_CLIENTS, SAMPLES_PER_CLIENT, seed=1)
    write_open_images_fixture(data / "openImg", FIXTURE_CLIENTS, SAMPLES_PER_CLIENT, seed=1)
    write_google_speech_fixture(data / "google_speech", FIXTURE_CLIENTS, SAMPLES_PER_CLIENT, seed=1)
    write_text_fixture(data / "reddit", FIXTURE_CLIENTS, SAMPLES_PER_CLIENT, seed=1)
    write_cifar10_fixture(data, 10, seed=1)
    write_device_traces(data / "device_info", FIXTURE_CLIENTS)
    return home


@pytest.fixture
def fedscale_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$FEDSCALE_HOME set to ``home``; the registry of running jobs kept there too."""
    monkeypatch.setenv("FEDSCALE_HOME", str(home))
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(home / "state"))


def on_one_host(data: dict[str, Any]) -> dict[str, Any]:
    """``data``, a job file's contents, with every host it names (``ps_ip``, ``worker_ips``) 127.0.0.1."""
    hosts: dict[str, Any] = {}
    if "ps_ip" in data:
        hosts["ps_ip"] = LOOPBACK
    if "worker_ips" in data:
        hosts["worker_ips"] = [re.sub(r"^[^\[\]]+(?=:\[)", LOOPBACK, entry) for entry in data["worker_ips"]]
    return {**data, **hosts}


def shrunk(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as a run of a few seconds: ``SIZES``, two executors on 127.0.0.1, a free port."""
    job_conf = [{key: SIZES.get(key, value)} for item in data["job_conf"] for key, value in item.items()]
    given = {key for item in job_conf for key in item}
    job_conf += [{key: value} for key, value in SIZES.items() if key not in given]
    executors = {"worker_ips": [f"{LOOPBACK}:[{EXECUTORS}]"]} if "worker_ips" in data else {"num_executors": EXECUTORS}
    return {**on_one_host(data), **executors, "ps_port": 0, "job_conf": job_conf}


def load(folder: Path, name: str, data: dict[str, Any]) -> JobSpec:
    path = folder / name.replace("/", "-")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_job(str(path))


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load(EXAMPLES[name])


def running() -> list[Any]:
    """The files that run, those that are SLOW marked slow."""
    return [pytest.param(name, marks=pytest.mark.slow) if outcome == SLOW else name
            for name, outcome in OUTCOMES.items() if outcome in (RUNS, SLOW)]


def test_the_table_covers_every_example() -> None:
    assert list(OUTCOMES) == list(EXAMPLES)


@pytest.mark.usefixtures("fedscale_home")
@pytest.mark.parametrize("name", running())
def test_the_example_runs_here(name: str, tmp_path: Path) -> None:
    """The file loads as shipped (hosts aside); shrunk, it differs from that in sizes only, and
    runs to a completed JOB_END with a test after each round."""
    as_shipped = load(tmp_path, f"full-{name}", on_one_host(example(name)))
    job = load(tmp_path, name, shrunk(example(name)))
    full_conf, conf = as_shipped.conf.public_dict(), job.conf.public_dict()
    changed = {key for key, value in full_conf.items() if conf[key] != value}
    assert changed <= {*SIZES, "ps_port", "num_executors"}, changed
    assert (job.deployment, job.mode) == (as_shipped.deployment, as_shipped.mode)
    log = run_to_end(job, launcher="local")
    assert log[-1]["tag"] == commons.JOB_END and log[-1]["status"] == commons.STATUS_COMPLETED, log[-1]
    tested = [event for event in log if event["tag"] == commons.TEST_RESULT]
    assert [event["round"] for event in tested] == [1, 2] and all(event["num_samples"] > 0 for event in tested)


@pytest.mark.usefixtures("fedscale_home")
@pytest.mark.parametrize("name", [name for name, outcome in OUTCOMES.items() if isinstance(outcome, Refused)])
def test_the_example_is_refused_in_one_line(name: str, tmp_path: Path) -> None:
    refused = OUTCOMES[name]
    assert isinstance(refused, Refused)
    with pytest.raises(ConfigError) as error:
        if refused.at_checks:
            run_to_end(load(tmp_path, name, shrunk(example(name))), launcher="local")
        else:
            load(tmp_path, name, on_one_host(example(name)))
    message = str(error.value)
    assert "\n" not in message and f"{refused.key}: " in message and refused.value in message, message


README_SECTION = "#### FedScale's example jobs here"


def test_the_readme_table_says_what_happens() -> None:
    """The README's table has one row per file, saying "runs" or "refused" as ``OUTCOMES`` does."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(README_SECTION):].split("\n#", 1)[0]
    rows = [row.strip("|").split("|") for row in section.splitlines() if row.startswith("| `")]
    said = {cells[0].strip().strip("`"): cells[-1].split()[0].rstrip(":,") for cells in rows}
    assert said == {name: "refused" if isinstance(outcome, Refused) else "runs" for name, outcome in OUTCOMES.items()}
