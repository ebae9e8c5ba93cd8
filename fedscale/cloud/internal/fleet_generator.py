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
* Availability: FedScale's ``client_behave_trace``, from FLASH (Yang et al., WWW 2021: an
  input-method app's users over one week; available = charging). Targets measured on that file
  (107,749 clients): periods of 1-15 whole days, mean 4.55; pooled availability 20.3%; 20.81
  intervals per client (4.6 per client-day, mean interval about 64 min); very skewed
  per-client availability. ASSUMPTIONS on the shapes: P(D = d) ∝ 0.805^d on 1..15 (mean 4.5);
  Poisson session counts; log-normal session lengths (sigma 1.0) times a per-client log-normal
  multiplier (sigma 0.8) for the skew; the clock starts at local midnight for every client and
  60% of session starts fall between 22:00 and 07:00. Overlapping sessions merge and a session
  is cut at the period's end; the pre-merge rate (6.0 per day) and median length (2,250 s) are
  calibrated by simulation so the merged traces hit 20.3% and 4.6 (measured on 20,000 to
  200,000 clients: 20.0-20.3%, 4.63-4.66 per day, mean interval about 3,750 s).
* CPU availability and battery: Carat (Oliner et al., SenSys 2013) as joined onto clients by
  Bliss (free-CPU % in [35, 100], battery % in [0, 99]); shapes are ASSUMPTIONS: 256 templates
  on 10-min steps; each day a night charge starting ~N(23 h, 1.5 h) for U(5, 9) h and, with
  probability 0.5, a daytime top-up of U(0.5, 2) h; battery charges at 40 %/h and drains at
  U(2.5, 7) %/h; free CPU is U(0.85, 1.0) while charging and otherwise an AR(1) (coefficient
  0.7, noise 0.1) around a template mean U(0.55, 0.85), clipped to [0.35, 1]. A client shares
  one template for both, with a phase jitter of up to one hour so the night charge stays at night.
* Static specs: Bliss's 12,641-client device table (GSMArena-style specs): brand, RAM and
  Android version shares, CPU and GPU FLOPS quantiles (``BRANDS``, ``RAM_GB``,
  ``OS_VERSIONS``, ``CPU_FLOPS``, ``GPU_FLOPS``; the shares the table leaves open are
  ASSUMPTIONS). ASSUMPTIONS: model names are synthetic (``<brand>-NN``, Zipf within brand);
  ``STORAGE_GB``; ``BATTERY_MAH`` quantiles (range from Bliss's device encoder); CPU and GPU
  FLOPS, RAM, storage and peak throughput share a latent device tier whose normal score has
  correlation -0.7 with the compute latency's (faster devices have better specs), each spec
  with its own noise (loading 0.8).
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
CARAT_STEP_SECONDS, CARAT_TEMPLATES = 600.0, 256
DAY_COUNT_DECAY, MAX_DAYS = 0.805, 15
SESSIONS_PER_DAY, SESSION_MEDIAN_SECONDS, SESSION_SIGMA, CLIENT_SIGMA = 6.0, 2_250.0, 1.0, 0.8
NIGHT_SHARE, NIGHT_START_HOUR, NIGHT_END_HOUR = 0.6, 22.0, 7.0
TIER_CORRELATION, TIER_LOADING = -0.7, 0.8
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


def _carat_templates(rng: np.random.Generator) -> tuple[StepTraces, StepTraces]:
    """Free-CPU fraction and battery percent templates driven by a daily charging schedule.

    Simulated over 72 h from local midnight; the last 48 h are kept so the battery has settled.
    """
    per_hour = 3600.0 / CARAT_STEP_SECONDS
    steps = int(CYCLE_SECONDS / CARAT_STEP_SECONDS)
    warmup = steps // 2
    hours = np.arange(warmup + steps) / per_hour
    shape = (CARAT_TEMPLATES, 4)
    night_start = 24.0 * np.arange(-1, 3) + rng.normal(23.0, 1.5, shape)
    night_end = night_start + rng.uniform(5.0, 9.0, shape)
    day_start = 24.0 * np.arange(4) + rng.uniform(9.0, 19.0, shape)
    day_end = np.where(rng.random(shape) < 0.5, day_start + rng.uniform(0.5, 2.0, shape), day_start)
    spans = [(night_start, night_end), (day_start, day_end)]
    charging = np.zeros((CARAT_TEMPLATES, len(hours)), dtype=bool)
    for begin, end in spans:
        charging |= ((hours[None, None, :] >= begin[:, :, None]) & (hours[None, None, :] < end[:, :, None])).any(axis=1)
    drain = rng.uniform(2.5, 7.0, CARAT_TEMPLATES) / per_hour
    battery = np.empty((CARAT_TEMPLATES, len(hours)))
    cpu = np.empty_like(battery)
    level, load = rng.uniform(30.0, 90.0, CARAT_TEMPLATES), np.zeros(CARAT_TEMPLATES)
    mean_free = rng.uniform(0.55, 0.85, CARAT_TEMPLATES)
    for step in range(len(hours)):
        level = np.clip(level + np.where(charging[:, step], 40.0 / per_hour, -drain), 0.0, 99.0)
        load = 0.7 * load + rng.normal(0.0, 0.1, CARAT_TEMPLATES)
        battery[:, step] = level
        cpu[:, step] = np.where(charging[:, step], rng.uniform(0.85, 1.0, CARAT_TEMPLATES), mean_free + load)
    cpu = np.clip(np.round(cpu[:, warmup:], 2), 0.35, 1.0)
    return (StepTraces(CARAT_STEP_SECONDS, cpu.astype(np.float32)),
            StepTraces(CARAT_STEP_SECONDS, np.round(battery[:, warmup:]).astype(np.float32), np.nan))


def _sorted_uniforms_per_group(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """For each group ``i``, ``counts[i]`` sorted uniforms on [0, 1), concatenated; built from
    normalised exponential spacings, so no sort is needed."""
    sizes = counts + 1
    spacing_sums = np.cumsum(rng.exponential(size=int(sizes.sum())))
    group_end = np.cumsum(sizes) - 1
    before = np.concatenate([[0.0], spacing_sums[group_end[:-1]]])
    within = spacing_sums - np.repeat(before, sizes)
    uniforms = within / np.repeat(within[group_end], sizes)
    keep = np.ones(len(uniforms), dtype=bool)
    keep[group_end] = False
    return np.minimum(uniforms[keep], np.nextafter(1.0, 0.0))


def _diurnal_seconds(fraction_of_day: np.ndarray) -> np.ndarray:
    """Seconds after midnight for a uniform fraction of the day, so that ``NIGHT_SHARE`` of the
    results fall between ``NIGHT_START_HOUR`` and ``NIGHT_END_HOUR`` (monotone map)."""
    night_hours = 24.0 - NIGHT_START_HOUR + NIGHT_END_HOUR
    early = NIGHT_SHARE * NIGHT_END_HOUR / night_hours
    hours = np.array([0.0, NIGHT_END_HOUR, NIGHT_START_HOUR, 24.0])
    cumulative = np.array([0.0, early, early + 1.0 - NIGHT_SHARE, 1.0])
    return np.interp(fraction_of_day, cumulative, hours) * 3600.0


def _charging_sessions(rng: np.random.Generator, n: int) -> Availability:
    """FLASH-like charging sessions: D-day periods, Poisson sessions, log-normal lengths.

    The trace repeats with its period, so a session running past the period's end continues
    at its start (a night charge that began before the first midnight)."""
    days = np.arange(1, MAX_DAYS + 1)
    num_days = _discrete(rng.random(n), days, DAY_COUNT_DECAY ** days)
    period = num_days * DAY
    counts = rng.poisson(SESSIONS_PER_DAY * num_days)
    owner = np.repeat(np.arange(n), counts)
    position = _sorted_uniforms_per_group(rng, counts) * num_days[owner]
    whole_days = np.floor(position)
    starts = np.floor(whole_days * DAY + _diurnal_seconds(position - whole_days)).astype(np.int64)
    client_scale = np.exp(rng.normal(-CLIENT_SIGMA ** 2 / 2, CLIENT_SIGMA, n))
    lengths = SESSION_MEDIAN_SECONDS * client_scale[owner] * np.exp(rng.normal(0.0, SESSION_SIGMA, len(starts)))
    ends = (starts + np.ceil(np.minimum(lengths, period[owner]))).astype(np.int64)
    wraps = ends > period[owner]
    wrapped_owner = owner[wraps]
    owner = np.concatenate([owner, wrapped_owner])
    starts = np.concatenate([starts, np.zeros(len(wrapped_owner), dtype=np.int64)])
    ends = np.concatenate([ends, ends[wraps] - period[wrapped_owner]])
    return normalize_intervals(owner, starts, ends, period)


def _static_specs(rng: np.random.Generator, n: int, compute_score: np.ndarray) -> dict[str, Any]:
    """Descriptive device fields; the numeric ones follow a latent tier tied to compute speed."""
    tier = TIER_CORRELATION * compute_score + np.sqrt(1 - TIER_CORRELATION ** 2) * rng.standard_normal(n)

    def tiered() -> np.ndarray:
        return ndtr(TIER_LOADING * tier + np.sqrt(1 - TIER_LOADING ** 2) * rng.standard_normal(n))

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
        "ram_gb": _discrete(tiered(), *RAM_GB).astype(np.float32),
        "storage_gb": _discrete(tiered(), *STORAGE_GB).astype(np.float32),
        "cpu_flops": _inverse_cdf(tiered(), SPEC_PERCENTILES, CPU_FLOPS, log=True).astype(np.float32),
        "gpu_flops": _inverse_cdf(tiered(), SPEC_PERCENTILES, GPU_FLOPS, log=True).astype(np.float32),
        "peak_throughput_mbps": _discrete(tiered(), *PEAK_THROUGHPUT_MBPS).astype(np.float32),
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
    cpu_library, battery_library = _carat_templates(rng)
    carat_template = rng.integers(0, CARAT_TEMPLATES, n, dtype=np.int32)
    carat_phase = rng.uniform(0.0, 3600.0, n).astype(np.float32)
    return Fleet.create(
        _inverse_cdf(compute_u, CAPACITY_PERCENTILES, COMPUTE_MS),
        _inverse_cdf(bandwidth_u, CAPACITY_PERCENTILES, BANDWIDTH_KBPS, log=True),
        rate=DynamicTrace(rate_library, rng.integers(0, RATE_TEMPLATES, n, dtype=np.int32),
                          rng.uniform(0.0, rate_library.cycle_seconds, n).astype(np.float32)),
        cpu=DynamicTrace(cpu_library, carat_template, carat_phase),
        battery=DynamicTrace(battery_library, carat_template, carat_phase),
        availability=_charging_sessions(rng, n),
        **_static_specs(rng, n, ndtri(compute_u)),
    )

