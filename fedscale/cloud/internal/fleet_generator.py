"""A seeded generator of realistic device fleets, calibrated to published device statistics.

Every distribution is either calibrated to a published statistic (source named) or marked
ASSUMPTION; ``docs/device-traces.md`` tabulates the figures and their origins. Marginals of
compute and bandwidth are drawn by stratified inverse-CDF sampling, so any fleet size
reproduces the published quantiles.

* Compute latency (ms/sample): FedScale's ``client_device_capacity`` (Lai et al., ICML 2022),
  whose latencies come from AI-Benchmark (Ignatov et al., ICCV Workshops 2019); percentiles of
  the 51,496 entries the PyramidFL artifact (Li et al., MobiCom 2022) maps to clients, whose
  means match the whole table's. Piecewise-linear inverse CDF through ``COMPUTE_MS``; bimodal.
* Bandwidth (kbps): the same file, from MobiPerf WiFi throughput measurements; inverse CDF,
  linear in log(kbps), through ``BANDWIDTH_KBPS``. Independent of compute, as in the data
  (correlation of logs 0.002). Uplink: see ``fedscale.cloud.time_model``.
* Bandwidth factor over time: LiveLab (Shepard et al., SIGMETRICS PER 2011) 802.11 PHY rates
  as joined onto 12,641 clients by Bliss (github.com/Bossbap/Bliss): factor = rate / 54 with
  the rate shares ``LIVELAB_PMF`` (mean 33.1, factor 0.61; the dynamic time model rescales
  each template to mean 1) on ~90 s steps over a 48 h cycle. ASSUMPTION: a Markov chain that
  keeps its rate with probability ``RATE_STAY`` per step and otherwise redraws from the pmf (its
  stationary law is the pmf); 256 shared templates, each client at a uniform random phase.
  Peak WLAN throughput (descriptive): Bliss's device table, ``PEAK_THROUGHPUT_MBPS``.
* Availability and charging: FedScale's ``client_behave_trace``, from FLASH (Yang et al., WWW
  2021: an input-method app's users over one week; available = charging, and FLASH's "ready"
  rule adds WiFi and idle). Targets measured on that file (107,749 clients): periods of 1-15
  whole days, mean 4.55; pooled availability 20.3%; 20.81 intervals per client (4.6 per
  client-day, mean interval about 64 min); very skewed per-client availability. The generator
  draws ``CARAT_TEMPLATES`` daily charging habits and derives each client's availability from
  its template, so a device is available only while its own battery trace is charging.
  ASSUMPTIONS on the shapes: a template charges in Poisson(8.7) sessions a day (before
  merging) with log-normal lengths (median 2,250 s, sigma 1.0) times a per-template log-normal
  multiplier (sigma 0.8) for the skew; 60% of session starts fall between 22:00 and 07:00 of
  the template's local clock; a client's period is D days, P(D = d) ∝ 0.805^d on 1..15
  (mean 4.5), and on every day of it each charging session of its template (read at the
  client's phase, up to an hour) is kept with a per-client "ready" probability U(0.5, 1).
  The session rate and median are calibrated by simulation so the kept sessions hit 20.3% and
  4.6 per day (measured on 2,000 to 100,000 clients: 20.4-20.9%, 4.60-4.73 per day, mean
  interval about 3,700-3,900 s).
* CPU availability and battery: Carat (Oliner et al., SenSys 2013) as joined onto clients by
  Bliss (free-CPU % in [35, 100], battery % in [0, 99]); shapes are ASSUMPTIONS: the
  templates above on 10-min steps, simulated two days before the kept 48 h; battery charges at
  40 %/h and drains at U(2.5, 7) %/h; free CPU is U(0.85, 1.0) while charging and otherwise an
  AR(1) (coefficient 0.7, noise 0.1) around a template mean U(0.55, 0.85), multiplied below
  ``SAVER_LEVEL`` % of battery by a battery-saver throttle falling linearly to
  ``SAVER_FLOOR`` at 0%, clipped to [0.35, 1]. So a selector that sees the dynamic windows
  can tell charging (available, battery rising, CPU free) from draining devices.
* Static specs: Bliss's 12,641-client device table (GSMArena-style specs): brand, RAM and
  Android version shares, CPU and GPU FLOPS quantiles (``BRANDS``, ``RAM_GB``,
  ``OS_VERSIONS``, ``CPU_FLOPS``, ``GPU_FLOPS``; the shares the table leaves open are
  ASSUMPTIONS). ASSUMPTIONS: model names are synthetic (``<brand>-NN``, Zipf within brand);
  ``STORAGE_GB``; ``BATTERY_MAH`` quantiles (range from Bliss's device encoder).
* Specs and time model agree, as in Bliss's simulator (github.com/Bossbap/Bliss,
  ``fedscale/cloud/internal/client_metadata.py``), which times compute from the device's
  FLOPS and the link as peak throughput x rate / 54. Each spec is drawn through its own
  inverse CDF (so its marginal is unchanged) from a uniform whose normal score has correlation
  ``FLOPS_FIDELITY`` (CPU and GPU FLOPS) or ``MEMORY_FIDELITY`` (RAM, storage) with the
  device's speed score (minus the normal score of its compute-latency quantile), and
  ``LINK_FIDELITY`` (peak throughput) with its link score (the normal score of its bandwidth
  quantile). ASSUMPTION: the fidelities; they give rank correlations of about -0.92 between
  FLOPS and latency and 0.84 between peak throughput and bandwidth.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from fedscale.cloud.internal.client_metadata import (CYCLE_SECONDS, Availability, Categorical, DynamicTrace, Fleet,
                                                     StepTraces, normalize_intervals)

DAY = 86_400
CAPACITY_PERCENTILES = np.array([0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100], dtype=np.float64)
COMPUTE_MS = np.array([15, 19, 21, 23, 25, 28, 41, 64, 138, 154, 174, 189, 193, 199], dtype=np.float64)
BANDWIDTH_KBPS = np.array([1_017, 1_393, 1_818, 2_255, 3_503, 4_799, 6_075, 8_418, 11_837, 19_751, 32_546, 51_663,
                           100_207, 204_057], dtype=np.float64)
LIVELAB_RATES = np.array([1, 2, 5, 11, 18, 24, 36, 48, 54], dtype=np.float64)
LIVELAB_PMF = np.array([2.2, 1.0, 2.3, 19.0, 7.3, 10.8, 18.4, 12.0, 27.0]) / 100.0
PEAK_THROUGHPUT_MBPS = (np.array([72.0, 150.0, 433.0]), np.array([0.164, 0.350, 0.486]))
RATE_STEP_SECONDS, RATE_STAY, RATE_TEMPLATES = 90.0, 0.9, 256
CARAT_STEP_SECONDS, CARAT_TEMPLATES, MAX_PHASE_SECONDS = 600.0, 1024, 3600
DAY_COUNT_DECAY, MAX_DAYS = 0.805, 15
CHARGE_SESSIONS_PER_DAY, CHARGE_MEDIAN_SECONDS, SESSION_SIGMA, DEVICE_SIGMA = 8.7, 2_250.0, 1.0, 0.8
READY_MIN = 0.5
NIGHT_SHARE, NIGHT_START_HOUR, NIGHT_END_HOUR = 0.6, 22.0, 7.0
CHARGE_PER_HOUR, DRAIN_PER_HOUR, SAVER_LEVEL, SAVER_FLOOR = 40.0, (2.5, 7.0), 20.0, 0.5
CHARGING_FREE_CPU, IDLE_FREE_CPU, CPU_AR, CPU_NOISE = (0.85, 1.0), (0.55, 0.85), 0.7, 0.1
FLOPS_FIDELITY, MEMORY_FIDELITY, LINK_FIDELITY = 0.93, 0.7, 0.93
BRANDS = (np.array(["Samsung", "HTC", "Asus", "LG", "Motorola", "Sony", "Huawei", "Lenovo"]),
          np.array([0.640, 0.092, 0.073, 0.070, 0.062, 0.025, 0.020, 0.018]))
MODELS_PER_BRAND = {"Samsung": 12}
OS_VERSIONS = (np.array(["4.1.2", "4.2.2", "4.4.2", "4.4.4", "5.0.2", "5.1.1", "6.0", "6.0.1", "7.0", "7.1.1",
                         "8.0.0"]),
               np.array([0.03, 0.04, 0.13, 0.13, 0.08, 0.15, 0.04, 0.26, 0.08, 0.02, 0.04]))
RAM_GB = (np.array([1.0, 1.5, 2.0, 3.0, 4.0]), np.array([0.18, 0.096, 0.48, 0.20, 0.044]))
STORAGE_GB = (np.array([8.0, 16.0, 32.0, 64.0, 128.0]), np.array([0.15, 0.45, 0.30, 0.08, 0.02]))
SPEC_PERCENTILES = np.array([0, 5, 25, 50, 75, 95, 100], dtype=np.float64)
CPU_FLOPS = np.array([4e9, 9.6e9, 1.92e10, 2.56e10, 3.68e10, 5.41e10, 6.72e10])
GPU_FLOPS = np.array([1e8, 2.45e8, 2.53e9, 3.25e9, 5.4e9, 2.7e11, 3.6e11])
BATTERY_MAH = np.array([1_300, 1_800, 2_300, 2_800, 3_200, 4_000, 9_600], dtype=np.float64)


def _stratified(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniforms, one in each of ``n`` equal strata, in random order."""
    return (rng.permutation(n) + rng.random(n)) / n


def _inverse_cdf(u: np.ndarray, percentiles: np.ndarray, values: np.ndarray, log: bool = False) -> np.ndarray:
    """Piecewise-linear (in value or log value) inverse CDF through published percentiles."""
    if log:
        return np.exp(np.interp(100.0 * u, percentiles, np.log(values)))
    return np.interp(100.0 * u, percentiles, values)


def _discrete(u: np.ndarray, values: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Inverse CDF of a discrete law (monotone in ``u``, so it preserves rank correlation)."""
    cumulative = np.cumsum(probabilities) / probabilities.sum()
    return values[np.minimum(np.searchsorted(cumulative, u, side="right"), len(values) - 1)]


def _livelab_rates(rng: np.random.Generator) -> StepTraces:
    """Rate-factor templates: a sticky Markov chain over LiveLab's PHY rates."""
    steps = int(CYCLE_SECONDS / RATE_STEP_SECONDS)
    redraw = rng.random((RATE_TEMPLATES, steps)) >= RATE_STAY
    redraw[:, 0] = True
    draws = _discrete(rng.random((RATE_TEMPLATES, steps)), LIVELAB_RATES, LIVELAB_PMF)
    last_redraw = np.maximum.accumulate(np.where(redraw, np.arange(steps), 0), axis=1)
    factors = np.take_along_axis(draws, last_redraw, axis=1) / LIVELAB_RATES.max()
    return StepTraces(RATE_STEP_SECONDS, factors.astype(np.float32))


def _step_coverage(charging: Availability, step_seconds: float) -> np.ndarray:
    """``[templates, steps]``: the fraction of each grid step of one period that each template
    spends charging (intervals are disjoint, so overlaps add)."""
    steps = int(np.ceil(charging.period.max() / step_seconds))
    owner = np.repeat(np.arange(len(charging.period)), np.diff(charging.offsets))
    edges = np.arange(steps + 1) * step_seconds
    overlap = (np.minimum(charging.ends[:, None], edges[None, 1:])
               - np.maximum(charging.starts[:, None], edges[None, :-1])).clip(min=0.0)
    coverage = np.zeros((len(charging.period), steps))
    np.add.at(coverage, owner, overlap / step_seconds)
    return coverage


def _carat_templates(rng: np.random.Generator, charging: Availability) -> tuple[StepTraces, StepTraces]:
    """Free-CPU fraction and battery percent templates driven by each template's daily charging.

    The battery rises at ``CHARGE_PER_HOUR`` while charging and drains at a per-template rate
    otherwise; the free CPU is high while charging, otherwise an AR(1) around a template mean,
    throttled below ``SAVER_LEVEL`` percent of battery. Simulated for two days before the kept
    48 h cycle so the battery has settled.
    """
    per_hour = 3600.0 / CARAT_STEP_SECONDS
    daily = _step_coverage(charging, CARAT_STEP_SECONDS)
    kept = int(CYCLE_SECONDS / CARAT_STEP_SECONDS)
    total = 2 * kept
    coverage = np.tile(daily, (1, total // daily.shape[1]))
    templates = len(daily)
    drain = rng.uniform(*DRAIN_PER_HOUR, templates) / per_hour
    mean_free = rng.uniform(*IDLE_FREE_CPU, templates)
    battery = np.empty((templates, total))
    cpu = np.empty_like(battery)
    level, load = rng.uniform(30.0, 90.0, templates), np.zeros(templates)
    for step in range(total):
        share = coverage[:, step]
        level = np.clip(level + share * CHARGE_PER_HOUR / per_hour - (1.0 - share) * drain, 0.0, 99.0)
        load = CPU_AR * load + rng.normal(0.0, CPU_NOISE, templates)
        saver = np.minimum(1.0, SAVER_FLOOR + (1.0 - SAVER_FLOOR) * level / SAVER_LEVEL)
        battery[:, step] = level
        cpu[:, step] = np.where(share >= 0.5, rng.uniform(*CHARGING_FREE_CPU, templates), (mean_free + load) * saver)
    cpu = np.clip(np.round(cpu[:, -kept:], 2), 0.35, 1.0)
    return (StepTraces(CARAT_STEP_SECONDS, cpu.astype(np.float32)),
            StepTraces(CARAT_STEP_SECONDS, np.round(battery[:, -kept:]).astype(np.float32), np.nan))


def _diurnal_seconds(fraction_of_day: np.ndarray) -> np.ndarray:
    """Seconds after midnight for a uniform fraction of the day, so that ``NIGHT_SHARE`` of the
    results fall between ``NIGHT_START_HOUR`` and ``NIGHT_END_HOUR`` (monotone map)."""
    night_hours = 24.0 - NIGHT_START_HOUR + NIGHT_END_HOUR
    early = NIGHT_SHARE * NIGHT_END_HOUR / night_hours
    hours = np.array([0.0, NIGHT_END_HOUR, NIGHT_START_HOUR, 24.0])
    cumulative = np.array([0.0, early, early + 1.0 - NIGHT_SHARE, 1.0])
    return np.interp(fraction_of_day, cumulative, hours) * 3600.0


def _wrapped(owner: np.ndarray, starts: np.ndarray, ends: np.ndarray, period: np.ndarray) -> Availability:
    """Availability from intervals that may cross the period's start or end: the trace repeats
    with its period, so the part outside ``[0, period)`` continues at the other end."""
    shift = np.where(starts < 0, period[owner], 0)
    starts, ends = starts + shift, ends + shift
    wraps = ends > period[owner]
    wrapped_owner = owner[wraps]
    return normalize_intervals(np.concatenate([owner, wrapped_owner]),
                               np.concatenate([starts, np.zeros(len(wrapped_owner), dtype=np.int64)]),
                               np.concatenate([ends, ends[wraps] - period[wrapped_owner]]), period)


def _charging_sessions(rng: np.random.Generator, n: int) -> Availability:
    """Daily charging habits of ``n`` template devices (period one day): Poisson sessions at
    diurnal start times, log-normal lengths scaled by a per-device multiplier."""
    counts = rng.poisson(CHARGE_SESSIONS_PER_DAY, n)
    owner = np.repeat(np.arange(n), counts)
    starts = np.floor(_diurnal_seconds(rng.random(len(owner)))).astype(np.int64)
    device_scale = np.exp(rng.normal(-DEVICE_SIGMA ** 2 / 2, DEVICE_SIGMA, n))
    lengths = CHARGE_MEDIAN_SECONDS * device_scale[owner] * np.exp(rng.normal(0.0, SESSION_SIGMA, len(starts)))
    ends = starts + np.ceil(np.minimum(lengths, DAY)).astype(np.int64)
    return _wrapped(owner, starts, ends, np.full(n, DAY, dtype=np.int64))


def _ready_sessions(rng: np.random.Generator, charging: Availability, template: np.ndarray, phase: np.ndarray,
                    ready: np.ndarray) -> Availability:
    """Each client's availability over a D-day period: every day, each charging session of its
    template (read at the client's phase) is kept with the client's probability ``ready`` (FLASH's
    "ready" = charging, on WiFi and idle), so the client is available only while charging."""
    n = len(template)
    days = np.arange(1, MAX_DAYS + 1)
    num_days = _discrete(rng.random(n), days, DAY_COUNT_DECAY ** days)
    spans = np.diff(charging.offsets)[template]
    copies = spans * num_days
    owner = np.repeat(np.arange(n), copies)
    local = np.arange(len(owner)) - np.repeat(np.cumsum(copies) - copies, copies)
    day, which = np.divmod(local, spans[owner])
    interval = charging.offsets[template[owner]] + which
    keep = rng.random(len(owner)) < ready[owner]
    owner, day, interval = owner[keep], day[keep], interval[keep]
    shift = day * DAY - np.round(phase[owner]).astype(np.int64)
    return _wrapped(owner, charging.starts[interval] + shift, charging.ends[interval] + shift, num_days * DAY)


def _scored(rng: np.random.Generator, score: np.ndarray, fidelity: float) -> np.ndarray:
    """Uniforms whose normal scores have correlation ``fidelity`` with ``score`` (a standard
    normal per client); fed to an inverse CDF, they keep that inverse CDF's marginal."""
    return ndtr(fidelity * score + np.sqrt(1.0 - fidelity ** 2) * rng.standard_normal(len(score)))


def _static_specs(rng: np.random.Generator, speed: np.ndarray, link: np.ndarray) -> dict[str, Any]:
    """Descriptive device fields: FLOPS, RAM and storage follow the device's speed score (the
    normal score of its compute quantile, fast = high), peak WLAN throughput its link score
    (the normal score of its bandwidth quantile)."""
    n = len(speed)
    brand_names, brand_weights = BRANDS
    brand = _discrete(rng.random(n), np.arange(len(brand_names)), brand_weights)
    model_names, model_of = [], np.empty(n, dtype=np.int32)
    rank = rng.zipf(1.6, n)
    for code, name in enumerate(brand_names):
        count = MODELS_PER_BRAND.get(str(name), 3)
        members = brand == code
        model_of[members] = len(model_names) + (rank[members] - 1) % count
        model_names.extend(f"{str(name).lower()}-{k + 1:02d}" for k in range(count))
    return {
        "brand": Categorical(brand.astype(np.int32), brand_names.astype(np.str_)),
        "model": Categorical(model_of, np.array(model_names, dtype=np.str_)),
        "os_version": Categorical(_discrete(rng.random(n), np.arange(len(OS_VERSIONS[0])), OS_VERSIONS[1]).astype(
            np.int32), OS_VERSIONS[0].astype(np.str_)),
        "ram_gb": _discrete(_scored(rng, speed, MEMORY_FIDELITY), *RAM_GB).astype(np.float32),
        "storage_gb": _discrete(_scored(rng, speed, MEMORY_FIDELITY), *STORAGE_GB).astype(np.float32),
        "cpu_flops": _inverse_cdf(_scored(rng, speed, FLOPS_FIDELITY), SPEC_PERCENTILES, CPU_FLOPS,
                                  log=True).astype(np.float32),
        "gpu_flops": _inverse_cdf(_scored(rng, speed, FLOPS_FIDELITY), SPEC_PERCENTILES, GPU_FLOPS,
                                  log=True).astype(np.float32),
        "peak_throughput_mbps": _discrete(_scored(rng, link, LINK_FIDELITY), *PEAK_THROUGHPUT_MBPS).astype(
            np.float32),
        "battery_mah": _inverse_cdf(rng.random(n), SPEC_PERCENTILES, BATTERY_MAH).astype(np.float32),
    }


def generate_fleet(num_clients: int, seed: int) -> Fleet:
    """A synthetic fleet of ``num_clients`` devices, identical for identical arguments; the
    distributions and their sources are listed in this module's docstring and in
    ``docs/device-traces.md``."""
    if num_clients < 1:
        raise ValueError(f"num_clients must be at least 1, got {num_clients}")
    rng = np.random.default_rng(seed)
    n = num_clients
    compute_u = _stratified(rng, n)
    bandwidth_u = _stratified(rng, n)
    rate_library = _livelab_rates(rng)
    charging = _charging_sessions(rng, CARAT_TEMPLATES)
    cpu_library, battery_library = _carat_templates(rng, charging)
    carat_template = rng.integers(0, CARAT_TEMPLATES, n, dtype=np.int32)
    carat_phase = rng.integers(0, MAX_PHASE_SECONDS, n).astype(np.float32)
    ready = rng.uniform(READY_MIN, 1.0, n)
    return Fleet.create(
        _inverse_cdf(compute_u, CAPACITY_PERCENTILES, COMPUTE_MS),
        _inverse_cdf(bandwidth_u, CAPACITY_PERCENTILES, BANDWIDTH_KBPS, log=True),
        rate=DynamicTrace(rate_library, rng.integers(0, RATE_TEMPLATES, n, dtype=np.int32),
                          rng.uniform(0.0, rate_library.cycle_seconds, n).astype(np.float32)),
        cpu=DynamicTrace(cpu_library, carat_template, carat_phase),
        battery=DynamicTrace(battery_library, carat_template, carat_phase),
        availability=_ready_sessions(rng, charging, carat_template, carat_phase, ready),
        **_static_specs(rng, -ndtri(compute_u), ndtri(bandwidth_u)),
    )
