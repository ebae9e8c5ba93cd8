"""Trace formats (FedScale pickles read safely, our .npz and JSON), the fleet a job runs on
(every bad file refused in one line), the ``traces`` command, and the fleet generator's
published statistics."""
from __future__ import annotations

import collections
import io
import json
import os
import pickle
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedscale.cloud.internal.client_metadata import Categorical, Fleet
from fedscale.cloud.internal.fleet_generator import (
    BANDWIDTH_KBPS,
    CAPACITY_PERCENTILES,
    COMPUTE_MS,
    LIVELAB_PMF,
    LIVELAB_RATES,
    generate_fleet,
)
from fedscale.cloud.internal.trace_formats import (
    TraceError,
    fleet_from_json,
    fleet_to_json,
    load_clients,
    load_fedscale,
    load_fleet,
    save_fleet,
)
from fedscale.cloud.internal.trace_formats import default_fleet_path, job_fleet
from fedscale.cloud.internal.traces import main
from fedscale.cloud.time_model import DynamicTimeModel, FedScaleTimeModel

CAPACITY = {3: {"computation": 120.5, "communication": 2_000.0},
            1: {"computation": 20.0, "communication": 8_000.0},
            2: {"computation": 45.0, "communication": 50_000.0}}
BEHAVE = collections.OrderedDict([
    (2, {"active": [100, 500], "inactive": [300, 900], "finish_time": 1_000, "duration": 600, "model": "LG-K350"}),
    (1, {"active": [0, 700], "inactive": [200, 1_000], "finish_time": 1_000, "duration": 500, "model": "SM-G930F"}),
])


def dump(path: Path, obj: Any) -> Path:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)
    return path


def assert_one_line_naming(error: pytest.ExceptionInfo[TraceError], path: Path, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message and str(path) in message and all(word in message for word in words), message


def labels(column: Categorical) -> list[str | None]:
    return [column.label(row) for row in range(len(column.codes))]


def assert_same(a: Any, b: Any) -> None:
    """Field-by-field equality of two fleets (NaN equal to NaN; categoricals by label, since a
    JSON file carries labels, not codes)."""
    for field in fields(a):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if isinstance(left, Categorical):
            assert labels(left) == labels(right), field.name
        elif isinstance(left, np.ndarray):
            np.testing.assert_array_equal(left, right, err_msg=field.name)
        elif hasattr(left, "__dataclass_fields__"):
            assert_same(left, right)
        else:
            assert left == right or (np.isnan(left) and np.isnan(right)), field.name


def test_fedscale_pickles_load_in_ascending_id_order(tmp_path: Path) -> None:
    fleet = load_fedscale(dump(tmp_path / "capacity", CAPACITY), dump(tmp_path / "behave", BEHAVE))
    assert fleet.client_id.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(fleet.compute_ms, [20.0, 45.0, 120.5])
    np.testing.assert_array_equal(fleet.bandwidth_kbps, [8_000.0, 50_000.0, 2_000.0])
    assert [fleet.client(row).static_info()["model"] for row in range(3)] == ["SM-G930F", "LG-K350", None]
    ids = np.array([0, 0, 0, 1, 1, 2])
    assert fleet.is_active(ids, [150, 250, 1_050, 50, 350, 12_345]).tolist() == [True, False, True, False, False,
                                                                                 True]
    # Client 1's [700,1000] meets its [0,200] across the period end.
    np.testing.assert_array_equal(fleet.online_until(np.array([0, 1]), [800, 600]), [1_200, 900])
    times = FedScaleTimeModel(fleet)
    np.testing.assert_array_equal(times.download_time(np.array([1]), 0.0, 50_000 * 1024 / 8), [1.0])
    np.testing.assert_array_equal(times.compute_time(np.array([2]), 0.0, 100), [3 * 100 * 120.5 / 1000])


def test_fedscale_capacity_alone_means_always_available(tmp_path: Path) -> None:
    fleet = load_fedscale(dump(tmp_path / "capacity", CAPACITY))
    assert fleet.is_active(np.arange(3), 1e7).all()
    assert fleet.rate.library.num_templates == 0 and fleet.cpu.library.num_templates == 0


def test_fedscale_cycle_matching_reproduces_the_aggregators_assignment(tmp_path: Path) -> None:
    fleet = load_fedscale(dump(tmp_path / "capacity", CAPACITY), dump(tmp_path / "behave", BEHAVE), match="cycle")
    # Client c gets entry c % 2 of the file: 1 -> key 1, 2 -> key 2, 3 -> key 1.
    assert [fleet.client(row).static_info()["model"] for row in range(3)] == ["SM-G930F", "LG-K350", "SM-G930F"]


class _Exploit:
    """Pickles as a call of ``function(argument)``, the classic pickle attack."""

    def __init__(self, function: Any, argument: str) -> None:
        self.function, self.argument = function, argument

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return self.function, (self.argument,)


@pytest.mark.parametrize("function, name", [(os.system, "system"), (eval, "builtins.eval")])
def test_pickles_naming_other_globals_are_refused_without_running(tmp_path: Path, function: Any, name: str) -> None:
    marker = tmp_path / "ran"
    command = f"touch {marker}" if function is os.system else f"open({str(marker)!r}, 'w')"
    entry = {"computation": 1.0, "communication": 1.0, "x": _Exploit(function, command)}
    path = dump(tmp_path / "capacity", {1: entry})
    with pytest.raises(TraceError) as error:
        load_fedscale(path)
    assert_one_line_naming(error, path, name, "refusing")
    assert not marker.exists()


@pytest.mark.parametrize("content, words", [
    ([1, 2, 3], ["non-empty dict"]),
    ({1: {"computation": 10.0}}, ["client 1", "communication"]),
    ({1: {"computation": -1.0, "communication": 5.0}}, ["client 1", "positive"]),
    ({"a": {"computation": 1.0, "communication": 5.0}}, ["integer client ids"]),
])
def test_malformed_capacity_pickles_are_one_line_errors(tmp_path: Path, content: Any, words: list[str]) -> None:
    path = dump(tmp_path / "capacity", content)
    with pytest.raises(TraceError) as error:
        load_fedscale(path)
    assert_one_line_naming(error, path, "expected", *words)


def test_malformed_behave_and_truncated_pickles_are_one_line_errors(tmp_path: Path) -> None:
    capacity = dump(tmp_path / "capacity", CAPACITY)
    behave = dump(tmp_path / "behave", {1: {"active": [0, 5], "inactive": [3], "finish_time": 10}})
    with pytest.raises(TraceError) as error:
        load_fedscale(capacity, behave)
    assert_one_line_naming(error, behave, "client 1", "equally long")
    truncated = tmp_path / "truncated"
    truncated.write_bytes(pickle.dumps(CAPACITY)[:20])
    with pytest.raises(TraceError) as error:
        load_fedscale(truncated)
    assert_one_line_naming(error, truncated, "expected")


def test_npz_round_trip_keeps_every_column(tmp_path: Path) -> None:
    fleet = generate_fleet(300, seed=4)
    save_fleet(fleet, tmp_path / "fleet.npz")
    loaded = load_clients(tmp_path / "fleet.npz")
    assert_same(fleet, loaded)
    np.testing.assert_array_equal(loaded.model.codes, fleet.model.codes)
    np.testing.assert_array_equal(loaded.model.vocab, fleet.model.vocab)
    ids = np.arange(300)
    np.testing.assert_array_equal(DynamicTimeModel(loaded).round_times(ids, 5e4, 16, 10, 1e6),
                                  DynamicTimeModel(fleet).round_times(ids, 5e4, 16, 10, 1e6))


def test_npz_round_trip_of_a_fleet_without_traces(tmp_path: Path) -> None:
    fleet = load_fedscale(dump(tmp_path / "capacity", CAPACITY), dump(tmp_path / "behave", BEHAVE))
    save_fleet(fleet, tmp_path / "plain.npz")
    assert_same(fleet, load_fleet(tmp_path / "plain.npz"))


def test_malformed_npz_files_are_one_line_errors(tmp_path: Path) -> None:
    fleet = generate_fleet(20, seed=1)
    good = tmp_path / "good.npz"
    save_fleet(fleet, good)
    with np.load(good) as archive:
        columns = dict(archive)
    cases = {
        "missing.npz": ({k: v for k, v in columns.items() if k != "compute_ms"}, "'compute_ms'"),
        "foreign.npz": ({"a": np.zeros(3)}, "fedscale-fleet"),
        "objects.npz": ({**columns, "cpu_phase": np.array([{}] * 20, dtype=object)}, "cpu_phase"),
        "shape.npz": ({**columns, "compute_ms": np.zeros((20, 2), dtype=np.float32)}, "compute_ms"),
        "short.npz": ({**columns, "ram_gb": np.zeros(3, dtype=np.float32)}, "ram_gb"),
    }
    for name, (content, word) in cases.items():
        path = tmp_path / name
        np.savez(path, **content)
        with pytest.raises(TraceError) as error:
            load_fleet(path)
        assert_one_line_naming(error, path, "expected", word)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(TraceError) as error:
        load_clients(garbage)
    assert_one_line_naming(error, garbage, "expected")


def test_json_round_trip_keeps_every_column(tmp_path: Path) -> None:
    fleet = generate_fleet(40, seed=6)
    fleet_to_json(fleet, tmp_path / "fleet.json")
    assert_same(fleet, load_clients(tmp_path / "fleet.json"))


def test_hand_written_json_list_of_clients(tmp_path: Path) -> None:
    clients = [{"id": 7, "computation": 30.0, "communication": 4_000.0, "brand": "Samsung", "ram_gb": 2},
               {"id": 5, "computation": 150.0, "communication": 1_500.0, "active": [0, 3_600],
                "inactive": [1_800, 7_200], "finish_time": 86_400, "duration": 5_400, "model": "LG-K350"}]
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(clients))
    fleet = fleet_from_json(path)
    assert fleet.client_id.tolist() == [5, 7]
    assert fleet.client(1).static_info()["brand"] == "Samsung" and fleet.client(0).static_info()["brand"] is None
    assert fleet.is_active(np.array([0, 0, 0, 1]), [100, 2_000, 86_400 + 4_000, 5e6]).tolist() == [True, False, True,
                                                                                                     True]
    np.testing.assert_allclose(FedScaleTimeModel(fleet).compute_time(np.array([0]), 0.0, 10), [3 * 10 * 150.0 / 1000])


@pytest.mark.parametrize("text, words", [
    ("{not json", ["valid JSON"]),
    ("[]", ["non-empty list"]),
    ('[{"id": 1, "computation": 1, "communication": 2, "speed": 3}]', ["client 1", "speed"]),
    ('[{"id": 1, "computation": 1}]', ["client 1", "communication"]),
    ('[{"id": 1, "computation": 1, "communication": 2, "active": [5], "inactive": [9]}]', ["finish_time"]),
    ('[{"id": 1, "computation": 1, "communication": 2, "rate_template": 0}]', ["rate_template"]),
    ('{"format": "other", "clients": []}', ["fedscale-fleet"]),
])
def test_malformed_json_is_a_one_line_error(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(text)
    with pytest.raises(TraceError) as error:
        load_clients(path)
    assert_one_line_naming(error, path, "expected", *words)


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fleet.pkl"
    with pytest.raises(TraceError) as error:
        load_clients(path)
    assert_one_line_naming(error, path, ".npz or .json")


def test_shipped_fleet_loads_and_is_reproducible(tmp_path: Path) -> None:
    shipped = load_clients(default_fleet_path())
    assert shipped.num_clients == 2000 and os.path.getsize(default_fleet_path()) < 3e6
    out = tmp_path / "regenerated.npz"
    assert main(["generate", "--clients", "2000", "--seed", "1", "--out", str(out)]) == 0
    assert_same(shipped, load_fleet(out))


def test_generator_is_deterministic_per_seed() -> None:
    assert_same(generate_fleet(500, seed=11), generate_fleet(500, seed=11))
    assert not np.array_equal(generate_fleet(500, seed=11).compute_ms, generate_fleet(500, seed=12).compute_ms)


@pytest.fixture(scope="module")
def generated() -> Fleet:
    return generate_fleet(20_000, seed=1)


PUBLISHED = slice(1, -1)


def test_generated_capacities_match_published_quantiles(generated: Fleet) -> None:
    percentiles = CAPACITY_PERCENTILES[PUBLISHED]
    np.testing.assert_allclose(np.percentile(generated.compute_ms, percentiles), COMPUTE_MS[PUBLISHED], rtol=0.05)
    np.testing.assert_allclose(np.percentile(generated.bandwidth_kbps, percentiles), BANDWIDTH_KBPS[PUBLISHED],
                               rtol=0.05)
    assert abs(np.corrcoef(np.log(generated.compute_ms), np.log(generated.bandwidth_kbps))[0, 1]) < 0.03


def test_generated_availability_matches_flash(generated: Fleet) -> None:
    availability = generated.availability
    ids = np.arange(generated.num_clients)
    online = np.mean([generated.is_active(ids, t).mean() for t in np.arange(0, 15 * 86_400, 3_600 * 5 + 17)])
    assert online == pytest.approx(0.20, abs=0.02)
    days = availability.period.sum() / 86_400
    assert len(availability.starts) / days == pytest.approx(4.6, abs=0.5)
    available = (availability.ends - availability.starts).sum() / availability.period.sum()
    assert available == pytest.approx(0.203, abs=0.02)
    assert set(np.unique(availability.period // 86_400)) <= set(range(1, 16))


def test_generated_dynamic_traces_follow_livelab_and_carat_ranges(generated: Fleet) -> None:
    rates = np.round(generated.rate.library.values * LIVELAB_RATES.max())
    shares = np.array([(rates == rate).mean() for rate in LIVELAB_RATES])
    np.testing.assert_allclose(shares, LIVELAB_PMF, atol=0.015)
    cpu, battery = generated.cpu.library.values, generated.battery.library.values
    assert cpu.min() >= 0.35 and cpu.max() <= 1.0 and battery.min() >= 0 and battery.max() <= 99
    peaks = {value: share for value, share in zip(*np.unique(generated.peak_throughput_mbps, return_counts=True))}
    assert peaks[433.0] / generated.num_clients == pytest.approx(0.486, abs=0.02)
    windows = generated.dynamic_windows(np.arange(100), 100_000.0)
    assert windows.shape == (100, 5, 3) and np.isfinite(windows).all()


def test_job_fleet_takes_pickles_then_clients_file_then_the_shipped_fleet(tmp_path: Path) -> None:
    capacity, behave = dump(tmp_path / "capacity", CAPACITY), dump(tmp_path / "behave", BEHAVE)
    clients = tmp_path / "fleet.json"
    fleet_to_json(generate_fleet(5, seed=2), clients)
    assert_same(job_fleet(str(clients), str(capacity), str(behave)), load_fedscale(capacity, behave))
    assert_same(job_fleet(str(clients), str(capacity), ""), load_fedscale(capacity))
    assert_same(job_fleet(str(clients), "", ""), load_clients(clients))
    assert_same(job_fleet("", "", ""), load_clients(default_fleet_path()))


@pytest.mark.parametrize("slot", ["device_conf_file", "device_avail_file"])
def test_job_fleet_refuses_a_malicious_pickle_without_running_it(tmp_path: Path, slot: str) -> None:
    marker = tmp_path / "ran"
    exploit = _Exploit(os.system, f"touch {marker}")
    files = {"device_conf_file": dump(tmp_path / "capacity", CAPACITY),
             "device_avail_file": dump(tmp_path / "behave", BEHAVE)}
    files[slot] = dump(tmp_path / "evil", {1: {"computation": 1.0, "communication": 1.0, "active": exploit}})
    with pytest.raises(TraceError) as error:
        job_fleet("", str(files["device_conf_file"]), str(files["device_avail_file"]))
    assert_one_line_naming(error, files[slot], "refusing", "system")
    assert not marker.exists()


def _npz_columns(**changes: np.ndarray) -> dict[str, np.ndarray]:
    with np.load(default_fleet_path()) as archive:
        return {**dict(archive), **changes}


def _write(path: Path, content: Any) -> Path:
    """``content`` written to ``path``: bytes or text as they are, a dict of arrays as an .npz,
    anything else pickled."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, dict) and all(isinstance(v, np.ndarray) for v in content.values()):
        with open(path, "wb") as handle:
            np.savez(handle, **content)
    else:
        dump(path, content)
    return path


def _corrupted_npz() -> bytes:
    data = bytearray(Path(default_fleet_path()).read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    return bytes(data)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


BEHAVE_ENTRY = {"active": [0], "inactive": [10], "finish_time": 100}
BAD_FLEETS: list[tuple[str, str, Any, list[str]]] = [
    ("capacity", "device_conf_file", None, ["readable"]),
    ("capacity", "device_conf_file", "plain text", ["pickle"]),
    ("capacity", "device_conf_file", {1: {"computation": 1.0, "communication": 2.0, "f": os.getcwd}}, ["refusing"]),
    ("capacity", "device_conf_file", [CAPACITY], ["non-empty dict"]),
    ("capacity", "device_conf_file", {1: {"computation": -3.0, "communication": 2.0}}, ["positive", "computation"]),
    ("capacity", "device_conf_file", {1: {"computation": 3.0, "communication": float("nan")}}, ["communication"]),
    ("capacity", "device_conf_file", {1: {"computation": 3.0, "communication": float("inf")}}, ["communication"]),
    ("capacity", "device_conf_file", {1: {"computation": 1e300, "communication": 2.0}}, ["compute_ms"]),
    ("capacity", "device_conf_file", {1: CAPACITY[1], "1": CAPACITY[2]}, ["each client id once"]),
    ("capacity", "device_conf_file", {"--1": CAPACITY[1]}, ["integer client ids"]),
    ("behave", "device_avail_file", None, ["readable"]),
    ("behave", "device_avail_file", {1: {**BEHAVE_ENTRY, "active": [float("inf")]}}, ["client 1", "seconds"]),
    ("behave", "device_avail_file", {1: {**BEHAVE_ENTRY, "inactive": [-5]}}, ["client 1", "seconds"]),
    ("behave", "device_avail_file", {1: {**BEHAVE_ENTRY, "active": [2 ** 40]}}, ["client 1", "seconds"]),
    ("behave", "device_avail_file", {1: {**BEHAVE_ENTRY, "finish_time": float("nan")}}, ["finish_time"]),
    ("behave", "device_avail_file", {1: {**BEHAVE_ENTRY, "finish_time": 2 ** 40}}, ["finish_time"]),
    ("behave", "device_avail_file", {1: "charging"}, ["client 1", "finish_time"]),
    ("fleet.npz", "clients_file", None, ["readable"]),
    ("fleet.npz", "clients_file", b"PK\x03\x04 not really a zip", [".npz archive"]),
    ("fleet.npz", "clients_file", _corrupted_npz(), ["expected"]),
    ("fleet.npz", "clients_file", np.zeros(3).tobytes(), [".npz archive"]),
    ("fleet.npz", "clients_file", _npy_bytes(np.zeros(3)), [".npz archive", "single"]),
    ("fleet.npz", "clients_file", _npz_columns(version=np.array("one")), ["version"]),
    ("fleet.npz", "clients_file", _npz_columns(format=np.array([{}], dtype=object)), ["format"]),
    ("fleet.npz", "clients_file", _npz_columns(cpu_phase=np.full(2000, np.inf, dtype=np.float32)), ["cpu_phase"]),
    ("fleet.npz", "clients_file", _npz_columns(ram_gb=np.full(2000, -2.0, dtype=np.float32)), ["ram_gb"]),
    ("fleet.npz", "clients_file", _npz_columns(rate_template=np.full(2000, 2 ** 33)), ["rate_template"]),
    ("fleet.npz", "clients_file", _npz_columns(compute_ms=np.zeros(2000, dtype=np.float32)), ["compute_ms"]),
    ("fleet.json", "clients_file", None, ["readable"]),
    ("fleet.json", "clients_file", "[" * 100_000, ["valid JSON"]),
    ("fleet.json", "clients_file", '[{"id": 1, "computation": 1e999, "communication": 2}]', ["computation"]),
    ("fleet.json", "clients_file", '[{"id": 1, "computation": 1%s, "communication": 2}]' % ("0" * 400),
     ["computation"]),
    ("fleet.json", "clients_file", '[{"id": 1, "computation": 1, "communication": 2, "ram_gb": -1}]', ["ram_gb"]),
    ("fleet.json", "clients_file", '[{"id": 1, "computation": 1, "communication": 2, "rate_template": 1e3}]',
     ["rate_template"]),
    ("fleet.json", "clients_file", '[{"id": 1, "computation": 1, "communication": 2, "cpu_phase": NaN}]',
     ["cpu_phase"]),
    ("fleet.json", "clients_file", '[{"id": 1, "computation": 1, "communication": 2, "active": [-1], '
                                   '"inactive": [5], "finish_time": 10}]', ["seconds"]),
    ("fleet.json", "clients_file", '[{"id": 1, "computation": 1, "communication": 2}, '
                                   '{"id": "1", "computation": 1, "communication": 2}]', ["each client id once"]),
    ("fleet.pkl", "clients_file", b"", [".npz or .json"]),
]


@pytest.mark.parametrize("name, slot, content, words", BAD_FLEETS)
def test_job_fleet_refuses_every_bad_file_in_one_line(tmp_path: Path, name: str, slot: str, content: Any,
                                                      words: list[str]) -> None:
    path = tmp_path / name if content is None else _write(tmp_path / name, content)
    settings = {"clients_file": "", "device_conf_file": "", "device_avail_file": "", slot: str(path)}
    if slot == "device_avail_file":
        settings["device_conf_file"] = str(dump(tmp_path / "capacity", CAPACITY))
    with pytest.raises(TraceError) as error:
        job_fleet(**settings)
    assert_one_line_naming(error, path, "expected", *words)


def test_job_fleet_refuses_availability_without_capacities(tmp_path: Path) -> None:
    behave = dump(tmp_path / "behave", BEHAVE)
    with pytest.raises(TraceError) as error:
        job_fleet("", "", str(behave))
    assert_one_line_naming(error, behave, "device_conf_file")


def test_generate_command_runs_as_a_module(tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    command = [sys.executable, "-m", "fedscale.cloud.internal.traces", "generate", "--clients", "30", "--seed", "2",
               "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.strip() == str(out)
    assert_same(generate_fleet(30, seed=2), load_clients(out))
