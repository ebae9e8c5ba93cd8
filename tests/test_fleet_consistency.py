"""The generated fleet's device specs, dynamic traces and availability agree with its time model
(as in Bliss's simulator, where compute follows the device's FLOPS, bandwidth its peak WLAN
throughput, and the battery charges while the device is available), on the shipped fleet and on a
freshly generated one."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
from scipy.stats import spearmanr

from fedscale.cloud.internal.client_metadata import Fleet
from fedscale.cloud.internal.fleet_generator import SAVER_LEVEL, generate_fleet
from fedscale.cloud.internal.trace_formats import default_fleet_path, load_clients


@pytest.fixture(scope="module", params=["shipped", "generated"])
def fleet(request: pytest.FixtureRequest) -> Fleet:
    return load_clients(default_fleet_path()) if request.param == "shipped" else generate_fleet(20_000, seed=3)


class Samples(NamedTuple):
    online: np.ndarray
    cpu: np.ndarray
    battery: np.ndarray
    battery_change: np.ndarray


def samples(fleet: Fleet, times: int = 30) -> Samples:
    """Every client at ``times`` instants over two weeks: online, the free CPU and battery of
    the current 10-minute trace step, and the battery's change from the step before."""
    ids = np.arange(fleet.num_clients)
    rows = []
    for t in np.random.default_rng(0).uniform(0.0, 14 * 86_400, times):
        cpu, _ = fleet.cpu.recent_steps(ids, t, 2)
        battery, _ = fleet.battery.recent_steps(ids, t, 2)
        rows.append((fleet.is_active(ids, t), cpu[:, 1], battery[:, 1], battery[:, 1] - battery[:, 0]))
    return Samples(*(np.concatenate(column) for column in zip(*rows)))


def test_faster_specs_mean_faster_compute_and_links(fleet: Fleet) -> None:
    assert spearmanr(fleet.cpu_flops, fleet.compute_ms)[0] < -0.85
    assert spearmanr(fleet.gpu_flops, fleet.compute_ms)[0] < -0.85
    assert spearmanr(fleet.peak_throughput_mbps, fleet.bandwidth_kbps)[0] > 0.75


def test_available_devices_are_charging_with_free_cpu(fleet: Fleet) -> None:
    seen = samples(fleet)
    assert seen.battery_change[seen.online].mean() > 1.0
    assert seen.battery_change[~seen.online].mean() < 0.0
    assert seen.cpu[seen.online].mean() - seen.cpu[~seen.online].mean() > 0.15


def test_low_battery_throttles_the_cpu(fleet: Fleet) -> None:
    seen = samples(fleet)
    offline = ~seen.online
    low = offline & (seen.battery < SAVER_LEVEL)
    high = offline & (seen.battery >= SAVER_LEVEL)
    assert low.mean() > 0.02
    assert seen.cpu[high].mean() - seen.cpu[low].mean() > 0.15
