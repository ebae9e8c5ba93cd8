"""Fleet data model: availability queries, the trace kernels, per-client views, scale."""
from __future__ import annotations

import time

import numpy as np
import pytest

from fedscale.cloud.internal.client_metadata import (
    Availability,
    DynamicTrace,
    Fleet,
    StepTraces,
    normalize_intervals,
)
from fedscale.cloud.internal.fleet_generator import generate_fleet
from fedscale.cloud.time_model import DynamicTimeModel

# One rate template on a 300 s cycle: factor 1.0 on [0,100), 0.5 on [100,200), 0.25 on [200,300).
RATE = StepTraces(100.0, np.array([[1.0, 0.5, 0.25]], dtype=np.float32))
# One cpu template on a 200 s cycle: full speed on [0,100), half speed on [100,200).
CPU = StepTraces(100.0, np.array([[1.0, 0.5]], dtype=np.float32))


def trace(library: StepTraces, templates: list[int]) -> DynamicTrace:
    return DynamicTrace(library, np.array(templates, dtype=np.int32), np.zeros(len(templates), dtype=np.float32))


@pytest.fixture
def fleet() -> Fleet:
    """Client 0 follows both templates; client 1 has none (constant factor 1)."""
    return Fleet.create(np.array([10.0, 10.0]), np.array([8.0, 8.0]), rate=trace(RATE, [0, -1]),
                        cpu=trace(CPU, [0, -1]))


def intervals(period: list[int], spans: list[list[tuple[int, int]]]) -> Availability:
    owner = [row for row, client in enumerate(spans) for _ in client]
    starts = [start for client in spans for start, _ in client]
    ends = [end for client in spans for _, end in client]
    return normalize_intervals(np.array(owner, dtype=np.int64), np.array(starts), np.array(ends), np.array(period))


# Rows: A [10,20)+[50,100) of 100 s; B [0,30)+[60,100) (continues over the wrap); C always;
# D never; E the whole period; F [10,20) only.
PERIODS = [100, 100, 0, 100, 100, 100]
SPANS = [[(50, 100), (10, 20)], [(0, 30), (60, 100)], [], [], [(0, 100)], [(10, 20)]]
A, B, C, D, E, F = range(6)


@pytest.fixture
def online() -> Fleet:
    n = len(PERIODS)
    return Fleet.create(np.ones(n), np.ones(n), availability=intervals(PERIODS, SPANS))


def rows(*ids: int) -> np.ndarray:
    return np.array(ids)


def test_is_active_uses_half_open_intervals_and_wraps_the_period(online: Fleet) -> None:
    ids = rows(A, A, A, A, A, B, C, D, E)
    times = [5, 10, 20, 150, 215, 99.5, 1e9, 50, 12345.6]
    assert online.is_active(ids, times).tolist() == [False, True, False, True, True, True, True, False, True]


def test_online_until_follows_the_interval_across_the_period_end(online: Fleet) -> None:
    ids = rows(A, A, B, B, B, C, D, E, A)
    times = [60, 160, 70, 10, 410, 5, 7, 3, 30]
    expected = [100, 200, 130, 30, 430, np.inf, 7, np.inf, 30]
    np.testing.assert_array_equal(online.online_until(ids, times), expected)


def test_next_online_finds_the_next_interval_or_the_next_period(online: Fleet) -> None:
    ids = rows(A, A, A, F, F, D, C, B)
    times = [25, 0, 120, 30, 1005, 7, 8, 40]
    expected = [50, 10, 150, 110, 1010, np.inf, 8, 60]
    np.testing.assert_array_equal(online.next_online(ids, times), expected)


def test_stays_active_requires_the_whole_span(online: Fleet) -> None:
    ids = rows(B, B, A, A, D, C, E)
    t0 = [70, 70, 12, 12, 5, 0, 0]
    t1 = [130, 131, 20, 21, 5, 1e9, 1e9]
    assert online.stays_active(ids, t0, t1).tolist() == [True, False, True, False, False, True, True]


def test_normalize_sorts_clips_and_merges_overlapping_or_touching_intervals() -> None:
    availability = intervals([100, 50, 0], [[(40, 60), (10, 20), (55, 70), (20, 25), (90, 150)],
                                             [(-5, 10), (30, 30)], [(0, 10)]])
    assert availability.offsets.tolist() == [0, 3, 4, 4]
    assert availability.starts.tolist() == [10, 40, 90, 0]
    assert availability.ends.tolist() == [25, 70, 100, 10]
    assert availability.period.tolist() == [100, 50, 0]


@pytest.mark.parametrize("starts, ends, message", [
    ([0, 5], [10, 20], "separated by gaps"),
    ([0], [200], "end <= period"),
    ([10], [10], "start < end"),
])
def test_fleet_rejects_intervals_that_are_not_normalised(starts: list[int], ends: list[int], message: str) -> None:
    bad = Availability(np.array([0, len(starts)]), np.array(starts, dtype=np.int32), np.array(ends, dtype=np.int32),
                       np.array([100], dtype=np.int32))
    with pytest.raises(ValueError, match=message):
        Fleet.create(np.ones(1), np.ones(1), availability=bad)


def test_fleet_rejects_non_positive_capacities_and_rates() -> None:
    with pytest.raises(ValueError, match="compute_ms"):
        Fleet.create(np.array([0.0]), np.ones(1))
    zero_rate = StepTraces(10.0, np.array([[1.0, 0.0]], dtype=np.float32))
    with pytest.raises(ValueError, match="rate library"):
        Fleet.create(np.ones(1), np.ones(1), rate=trace(zero_rate, [0]))


def test_rate_kernel_crossing_a_step_uses_both_rates(fleet: Fleet) -> None:
    # 75 s of nominal transfer from t=50: 50 s at factor 1, then the other 25 s at 0.5: 50 s more.
    np.testing.assert_allclose(fleet.rate.time_to_accumulate(rows(0), 50.0, 75.0), [100.0])


def test_rate_kernel_crossing_the_cycle_end_and_many_cycles(fleet: Fleet) -> None:
    # From 250: 50 s at 0.25 (12.5 s of work), then the cycle restarts at factor 1: 37.5 s.
    np.testing.assert_allclose(fleet.rate.time_to_accumulate(rows(0), 250.0, 50.0), [87.5])
    per_cycle = 100 * (1.0 + 0.5 + 0.25)
    np.testing.assert_allclose(fleet.rate.time_to_accumulate(rows(0, 0), [0.0, 3_000.0 + 50.0],
                                                             [3 * per_cycle + 50.0, 75.0]),
                               [950.0, 100.0])


def test_cpu_kernel_follows_the_trace(fleet: Fleet) -> None:
    # 60 s of nominal compute from t=80: 20 s at full speed, the remaining 40 s at half speed = 80 s.
    np.testing.assert_allclose(fleet.cpu.time_to_accumulate(rows(0), 80.0, 60.0), [100.0])


def test_cycle_mean_of_a_template_and_of_no_template(fleet: Fleet) -> None:
    np.testing.assert_allclose(fleet.rate.cycle_mean(rows(0, 1)), [1.75 / 3, 1.0])
    np.testing.assert_allclose(fleet.cpu.cycle_mean(rows(0, 1)), [0.75, 1.0])


def test_per_client_view_matches_the_fleet() -> None:
    generated = generate_fleet(200, seed=5)
    ids = np.arange(200)
    t0 = 1e5 + 977.0 * ids
    active = generated.is_active(ids, t0)
    assert [generated.client(row).is_active(t0[row]) for row in ids] == active.tolist()


def test_static_info_names_the_descriptive_fields() -> None:
    info = generate_fleet(10, seed=2).client(4).static_info()
    assert info["client_id"] == 4 and info["brand"] and info["os_version"] and info["ram_gb"] > 0
    unknown = Fleet.create(np.ones(1), np.ones(1)).client(0).static_info()
    assert unknown["brand"] is None and np.isnan(unknown["cpu_flops"])


def test_take_keeps_each_rows_data_and_shares_templates() -> None:
    generated = generate_fleet(300, seed=9)
    ids = np.array([299, 3, 150, 3])
    sub = generated.take(ids)
    assert sub.num_clients == 4 and sub.rate.library is generated.rate.library
    local = np.arange(4)
    for t in (0.0, 40_000.0, 250_000.0):
        np.testing.assert_array_equal(sub.is_active(local, t), generated.is_active(ids, t))
        np.testing.assert_array_equal(sub.online_until(local, t), generated.online_until(ids, t))
        np.testing.assert_array_equal(DynamicTimeModel(sub).round_times(local, t, 8, 5, 1e6),
                                      DynamicTimeModel(generated).round_times(ids, t, 8, 5, 1e6))
    assert sub.client(0).static_info() | {"client_id": 0} == generated.client(299).static_info() | {"client_id": 0}


def test_round_times_for_a_thousand_of_a_large_fleet_is_fast() -> None:
    large = generate_fleet(200_000, seed=1)
    times = DynamicTimeModel(large)
    ids = np.random.default_rng(0).choice(large.num_clients, 1000, replace=False)
    times.round_times(ids, 0.0, 16, 20, 2e7)
    started = time.perf_counter()
    t_dl, t_comp, t_ul = times.round_times(ids, 123_456.0, 16, 20, 2e7)
    assert time.perf_counter() - started < 0.2
    assert np.isfinite(t_dl + t_comp + t_ul).all() and (t_dl > 0).all()
    started = time.perf_counter()
    large.is_active(np.arange(large.num_clients), 77_777.0)
    assert time.perf_counter() - started < 0.5


def test_online_cursor_matches_a_full_recomputation():
    from fedscale.cloud.internal.client_metadata import OnlineCursor
    from fedscale.cloud.internal.fleet_generator import generate_fleet
    fleet = generate_fleet(3000, seed=5)
    rows = np.arange(0, 3000, 2)
    cursor = OnlineCursor(fleet, rows)
    times = np.concatenate([np.cumsum(np.random.default_rng(0).exponential(900.0, 60)), [500.0, 10_000.0]])
    for t in times:  # forward in time, then a jump back
        assert np.array_equal(cursor.advance(t), np.flatnonzero(fleet.is_active(rows, t)))
        expected = t if fleet.is_active(rows, t).any() else fleet.next_online(rows, t).min()
        assert cursor.next_online_time(t) == expected
