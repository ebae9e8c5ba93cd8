"""The two time models on hand-built fleets, against hand-computed numbers."""
from __future__ import annotations

import numpy as np
import pytest

from fedscale.cloud.config_parser import JobConf
from fedscale.cloud.config.keys import ConfigError
from fedscale.cloud.internal.client_metadata import DynamicTrace, Fleet, StepTraces, normalize_intervals
from fedscale.cloud.internal.fleet_generator import generate_fleet
from fedscale.cloud.time_model import DynamicTimeModel, FedScaleTimeModel, build_time_model

# Rate factor 1.0, 0.5, 0.25 on 100 s steps (cycle mean 0.5833); free CPU 1.0, 0.5 (mean 0.75).
RATE = StepTraces(100.0, np.array([[1.0, 0.5, 0.25]], dtype=np.float32))
CPU = StepTraces(100.0, np.array([[1.0, 0.5]], dtype=np.float32))
MODEL_BYTES = 128_000  # 1,000 of FedScale's kilobits (bytes / 1024 * 8)


def traced(library: StepTraces, templates: list[int]) -> DynamicTrace:
    return DynamicTrace(library, np.array(templates, dtype=np.int32), np.zeros(len(templates), dtype=np.float32))


@pytest.fixture
def fleet() -> Fleet:
    """Row 0: 50 ms/sample, 1,000 kbps, following both traces; row 1: 20 ms, 4,000 kbps, no
    trace; row 2 like row 1, online on [0, 5) and [10, 100) of every 100 s."""
    availability = normalize_intervals(np.array([2, 2]), np.array([0, 10]), np.array([5, 100]),
                                       np.array([0, 0, 100]))
    return Fleet.create(np.array([50.0, 20.0, 20.0]), np.array([1000.0, 4000.0, 4000.0]),
                        rate=traced(RATE, [0, -1, -1]), cpu=traced(CPU, [0, -1, -1]), availability=availability)


def test_fedscale_formula_matches_fedscales_numbers(fleet: Fleet) -> None:
    # FedScale: compute 3 * 10 * 20 * ms / 1000; download and upload 1,000 kbit / kbps each, one
    # symmetric link at the constant measured rate (row 0's traces are ignored).
    t_dl, t_comp, t_ul = FedScaleTimeModel(fleet).round_times(np.arange(3), 150.0, 10, 20, MODEL_BYTES)
    np.testing.assert_allclose(t_dl, [1.0, 0.25, 0.25])
    np.testing.assert_allclose(t_comp, [30.0, 12.0, 12.0])
    np.testing.assert_allclose(t_ul, t_dl)
    _, _, half = FedScaleTimeModel(fleet).round_times(np.arange(3), 0.0, 10, 20, MODEL_BYTES, MODEL_BYTES / 2)
    np.testing.assert_allclose(half, [0.5, 0.125, 0.125])


def test_fedscale_counts_a_client_online_at_its_finish_dynamic_one_online_throughout(fleet: Fleet) -> None:
    row = np.array([2])  # offline on [5, 10), online again when its 12.5 s round ends
    finish = 0.0 + sum(FedScaleTimeModel(fleet).round_times(row, 0.0, 10, 20, MODEL_BYTES))
    assert finish == pytest.approx(12.5)
    assert FedScaleTimeModel(fleet).completes(row, 0.0, finish).tolist() == [True]
    assert DynamicTimeModel(fleet).completes(row, 0.0, finish).tolist() == [False]
    assert FedScaleTimeModel(fleet).completes(row, 0.0, 7.0).tolist() == [False]
    assert FedScaleTimeModel(fleet).lost(row, 0.0, 7.0).tolist() == [False]
    assert DynamicTimeModel(fleet).lost(row, 0.0, 7.0).tolist() == [True]


def test_dynamic_traces_keep_the_measured_rate_as_the_long_run_mean(fleet: Fleet) -> None:
    times = DynamicTimeModel(fleet)
    row = np.array([0])
    # 100 cycles' worth of nominal transfer at 1,000 kbps (125,000 B/s) takes 100 cycles.
    np.testing.assert_allclose(times.download_time(row, 0.0, 300 * 100 * 125_000), [30_000.0])
    # From any start, a transfer long against the cycle takes about the nominal time.
    assert times.download_time(row, 1234.0, 300 * 100 * 125_000)[0] == pytest.approx(30_000.0, rel=0.01)
    # 100 cycles' worth of nominal compute (3 * samples * 50 ms = 20,000 s) takes 100 cycles.
    np.testing.assert_allclose(times.compute_time(row, 0.0, 20_000 * 1000 / 150), [20_000.0])


def test_dynamic_traces_of_the_shipped_generator_average_one() -> None:
    generated = generate_fleet(300, seed=4)
    times = DynamicTimeModel(generated)
    ids = np.arange(300)
    t0 = 977.0 * ids
    cycle = generated.rate.library.cycle_seconds
    bits = cycle * generated.bandwidth_kbps.astype(np.float64) * 1000.0
    np.testing.assert_allclose(times.download_time(ids, t0, bits / 8), cycle, rtol=1e-6)
    cpu_cycle = generated.cpu.library.cycle_seconds
    samples = cpu_cycle * 1000.0 / (3.0 * generated.compute_ms.astype(np.float64))
    np.testing.assert_allclose(times.compute_time(ids, t0, samples), cpu_cycle, rtol=1e-6)


def test_dynamic_uplink_is_the_downlink_times_the_reduction_factor(fleet: Fleet) -> None:
    row = np.array([1])
    times = DynamicTimeModel(fleet, reduction_factor=0.25)
    np.testing.assert_allclose(times.download_time(row, 0.0, 500_000), [1.0])  # 4,000 kbps = 500,000 B/s
    np.testing.assert_allclose(times.upload_time(row, 0.0, 500_000), [4.0])


@pytest.mark.parametrize("model", [FedScaleTimeModel, DynamicTimeModel])
def test_clock_factor_scales_the_whole_round(fleet: Fleet, model: type) -> None:
    rows = np.array([1, 2])  # constant rates: the round time is exactly proportional
    plain = np.array(model(fleet).round_times(rows, 5.0, 10, 20, MODEL_BYTES))
    scaled = np.array(model(fleet, clock_factor=2.5).round_times(rows, 5.0, 10, 20, MODEL_BYTES))
    np.testing.assert_allclose(scaled, 2.5 * plain)


def test_the_job_chooses_the_model_and_fedscale_refuses_an_uplink_factor(fleet: Fleet) -> None:
    assert isinstance(build_time_model(fleet, JobConf({}).fleet, 1000), FedScaleTimeModel)
    dynamic = build_time_model(fleet, JobConf({"time_model": "dynamic", "reduction_factor": 0.3}).fleet, 1000)
    assert isinstance(dynamic, DynamicTimeModel) and dynamic.reduction_factor == 0.3
    with pytest.raises(ConfigError, match="reduction_factor"):
        JobConf({"reduction_factor": 0.3})


@pytest.mark.parametrize("time_model", ["fedscale", "dynamic"])
def test_model_size_times_the_links_for_that_model_whatever_is_trained(fleet: Fleet, time_model: str) -> None:
    rows = np.array([1, 2])
    own = build_time_model(fleet, JobConf({"time_model": time_model}).fleet, MODEL_BYTES)
    resnet = build_time_model(fleet, JobConf({"time_model": time_model, "model_size": 349_000}).fleet, MODEL_BYTES)
    t_dl, t_comp, t_ul = own.round_times(rows, 5.0, 10, 20, 44_672_000, upload_bytes=0.5 * 44_672_000)
    r_dl, r_comp, r_ul = resnet.round_times(rows, 5.0, 10, 20, MODEL_BYTES, upload_bytes=0.5 * MODEL_BYTES)
    np.testing.assert_allclose([r_dl, r_comp, r_ul], [t_dl, t_comp, t_ul])
    with pytest.raises(ConfigError, match="model_size"):
        JobConf({"model_size": 0})
