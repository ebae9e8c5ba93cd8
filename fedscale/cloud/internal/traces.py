"""Device-trace files in, ``Fleet`` out: FedScale's pickles (read safely), our compact ``.npz``,
a JSON form for small hand-written fleets, and a seeded generator of realistic fleets.

Formats
-------
* FedScale pickles. ``client_device_capacity``: ``{id: {"computation": ms per sample,
  "communication": kbps}}``; ``client_behave_trace``: ``{id: {"active": [starts],
  "inactive": [ends], "finish_time": period, "duration": available seconds, "model": str}}``.
  Read with an unpickler that admits only plain containers and numbers, so a pickle cannot run
  code; no pickle is ever written.
* ``.npz`` (``save_fleet``/``load_fleet``): every ``Fleet`` column under its own name, read
  with ``allow_pickle=False``; vocabularies are unicode arrays; ``format``/``version`` keys.
* ``.json`` (``fleet_from_json``/``fleet_to_json``): a list of clients with FedScale-style keys,
  or ``{"format", "version", "traces": {...}, "clients": [...]}`` carrying template libraries.

Generator (``generate_fleet``), following the research notes (selection.md §6.4). Every
distribution below is either calibrated to a published statistic (source given) or marked
ASSUMPTION. Marginals of compute and bandwidth are drawn by stratified inverse-CDF sampling,
so any fleet size reproduces the published quantiles.

* Compute latency (ms/sample) — FedScale ``client_device_capacity`` (AI-Benchmark inference
  latencies; percentiles recomputed in selection.md §6.1 from 51,496 of its 500,000 entries):
  piecewise-linear inverse CDF of p0 15, p5 19, p10 21, p20 23, p30 25, p40 28,
  p50 41, p60 64, p70 138, p80 154, p90 174, p95 189, p99 193, p100 199); bimodal.
* Bandwidth (kbps) — FedScale (MobiPerf WiFi throughput; same source): inverse CDF, linear in log(kbps), of p0 1,017,
  p5 1,393, p10 1,818, p20 2,255, p30 3,503, p40 4,799, p50 6,075, p60 8,418, p70 11,837,
  p80 19,751, p90 32,546, p95 51,663, p99 100,207, p100 204,057. Independent of compute, as in
  the data (correlation of logs 0.002). Uplink = downlink x ``reduction_factor`` (FedScale).
* Bandwidth factor over time — LiveLab (Shepard et al., SIGMETRICS PER 2011) as joined onto
  clients by Bliss (selection.md §6.3): 802.11 PHY rate index on ~90 s steps over a 48 h cycle,
  factor = rate / 54, rate shares 1: 2.2%, 2: 1.0%, 5: 2.3%, 11: 19.0%, 18: 7.3%, 24: 10.8%,
  36: 18.4%, 48: 12.0%, 54: 27.0% (mean 33.1, so the mean effective downlink is 0.61 x the
  nominal ``bandwidth_kbps``).
  ASSUMPTION: a Markov chain that keeps its rate with probability 0.9 per step and otherwise
  redraws from the pmf (its stationary law is the pmf); 256 shared templates, each client at a
  uniform random phase. Peak WLAN throughput (descriptive) from Bliss's device table:
  72 Mb/s 16.4%, 150 Mb/s 35.0%, 433 Mb/s 48.6%.
* Availability — FedScale ``client_behave_trace`` (from FLASH, Yang et al., WWW 2021: an
  input-method app's users over one week; available = charging). Published targets
  (selection.md §6.2): periods of 1-15 whole days, mean 4.55; pooled availability 20.3%;
  20.81 intervals per client (4.6 per client-day, mean interval about 64 min); very skewed
  per-client availability. ASSUMPTIONS on the shapes: P(D = d) ∝ 0.805^d on 1..15 (mean 4.5);
  Poisson session counts; log-normal session lengths (sigma 1.0) times a per-client log-normal
  multiplier (sigma 0.8) for the skew; the clock starts at local midnight for every client and
  60% of session starts fall between 22:00 and 07:00. Overlapping sessions merge and a session
  is cut at the period's end; the pre-merge rate (6.0 per day) and median length (2,250 s) are
  calibrated by simulation so the merged traces hit 20.3% and 4.6 (measured on 20,000 to
  200,000 clients: 20.0-20.3%, 4.63-4.66 per day, mean interval about 3,750 s).
* CPU availability and battery — Carat (Oliner et al., SenSys 2013) as joined onto clients by
  Bliss (free-CPU % in [35, 100], battery % in [0, 99]; selection.md §6.3); shapes are
  ASSUMPTIONS: 256 templates on 10-min steps;
  each day a night charge starting ~N(23 h, 1.5 h) for U(5, 9) h and, with probability 0.5, a
  daytime top-up of U(0.5, 2) h; battery charges at 40 %/h and drains at U(2.5, 7) %/h;
  free CPU is U(0.85, 1.0) while charging and otherwise an AR(1) (coefficient 0.7, noise 0.1)
  around a template mean U(0.55, 0.85), clipped to [0.35, 1]. A client shares one template for
  both, with a phase jitter of up to one hour so the night charge stays at night.
* Static specs — Bliss's 12,641-client device table (GSMArena-style specs; selection.md
  §6.3): brand Samsung 64%,
  HTC 9.2%, Asus 7.3%, LG 7.0%, Motorola 6.2%, rest (ASSUMPTION: Sony, Huawei, Lenovo);
  RAM 1 GB 18%, 1.5 GB 9.6%, 2 GB 48%, 3 GB 20%, 4 GB rest (ASSUMPTION); Android 4.4.x 26%,
  5.x 23%, 6.0.1 26%, other versions ASSUMPTION; CPU FLOPS p5 9.6e9, p25 1.92e10, p50 2.56e10,
  p75 3.68e10, p95 5.41e10 (ends 4e9 and 6.72e10 from Bliss's encoder range); GPU FLOPS
  p5 2.45e8, p25 2.53e9, p50 3.25e9, p75 5.4e9, p95 2.7e11 (ends 1e8 ASSUMPTION, 3.6e11).
  ASSUMPTIONS: model names are synthetic (``<brand>-NN``, Zipf within brand); storage 8/16/32/
  64/128 GB at 15/45/30/8/2%; battery capacity quantiles 1,300/1,800/2,300/2,800/3,200/4,000/
  9,600 mAh at p0/5/25/50/75/95/100 (range from Bliss's encoder); CPU and GPU FLOPS, RAM,
  storage and peak throughput share a latent device tier whose normal score has correlation
  -0.7 with the compute latency's (faster devices have better specs), each spec with its own
  noise (loading 0.8).
"""
from __future__ import annotations

import argparse
import collections
import json
import pickle
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.special import ndtr, ndtri

from fedscale.cloud.internal.client_metadata import (
    CATEGORICALS,
    CYCLE_SECONDS,
    DESCRIPTIVE_FLOATS,
    DYNAMICS,
    Availability,
    Categorical,
    DynamicTrace,
    Fleet,
    StepTraces,
    normalize_intervals,
)

FORMAT_NAME = "fedscale-fleet"
FORMAT_VERSION = 1
DAY = 86_400


class TraceError(ValueError):
    """A trace file that cannot be read as described; one line naming the file and what was
    expected there."""

    @classmethod
    def at(cls, path: object, expected: str) -> TraceError:
        return cls(f"{path}: expected {expected}")


# ---------------------------------------------------------------- FedScale pickles

_PLAIN_GLOBALS: dict[tuple[str, str], Any] = {
    **{("builtins", t.__name__): t for t in (dict, list, tuple, set, str, int, float, bool)},
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numbers only; any other global is refused before it is
    looked up, so nothing in the file can run."""

    def __init__(self, file: Any, path: str) -> None:
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLAIN_GLOBALS:
            return _PLAIN_GLOBALS[(module, name)]
        raise TraceError(f"{self.path}: refusing to unpickle global {module}.{name}; "
                         "expected only plain containers and numbers")


def read_plain_pickle(path: str | Path) -> Any:
    """The object in the pickle at ``path`` if it holds only plain containers and numbers."""
    try:
        with open(path, "rb") as handle:
            return _PlainUnpickler(handle, str(path)).load()
    except TraceError:
        raise
    except OSError as err:
        raise TraceError.at(path, f"a readable file ({err.strerror})") from None
    except Exception as err:
        raise TraceError.at(path, f"a pickle of plain containers ({type(err).__name__}: {err})") from None


def _client_key(path: str | Path, key: Any) -> int:
    if isinstance(key, bool) or not isinstance(key, (int, str)) or not str(key).strip().lstrip("-").isdigit():
        raise TraceError.at(path, f"integer client ids as keys, got {key!r}")
    return int(key)


def _number(path: str | Path, key: Any, entry: Any, field: str, positive: bool = True) -> float:
    value = entry.get(field) if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or (
            positive and value <= 0):
        raise TraceError.at(path, f"client {key}: a {'positive ' if positive else ''}number under "
                                  f"'{field}', got {value!r}")
    return float(value)


def _intervals(path: str | Path, key: Any, entry: Any) -> tuple[list[int], list[int], int]:
    """``(starts, ends, period)`` of one behave-trace entry, checked."""
    if not isinstance(entry, dict):
        raise TraceError.at(path, f"client {key}: a dict with active, inactive and finish_time")
    period = _number(path, key, entry, "finish_time")
    active, inactive = entry.get("active"), entry.get("inactive")
    if not (isinstance(active, list) and isinstance(inactive, list) and len(active) == len(inactive)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in active + inactive)):
        raise TraceError.at(path, f"client {key}: 'active' and 'inactive' as equally long lists of numbers")
    return [int(v) for v in active], [int(v) for v in inactive], int(period)


def load_fedscale(device_conf_file: str | Path, device_avail_file: str | Path | None = None,
                  match: str = "id") -> Fleet:
    """A fleet from FedScale's ``client_device_capacity`` (and optionally ``client_behave_trace``).

    Rows are the capacity file's client ids in ascending order. ``match="id"`` gives each
    device the behave entry with the same id (none: always available); ``match="cycle"``
    reproduces FedScale's aggregator, which hands client ``c`` the entry at position
    ``c % len(entries)`` of the behave file. FedScale's closed intervals ``[active, inactive]``
    become half-open ones; zero-length intervals therefore vanish.
    """
    if match not in ("id", "cycle"):
        raise ValueError(f"match must be 'id' or 'cycle', got {match!r}")
    capacity = read_plain_pickle(device_conf_file)
    if not isinstance(capacity, dict) or not capacity:
        raise TraceError.at(device_conf_file, "a non-empty dict {client id: {computation, communication}}")
    ids = sorted(capacity, key=lambda key: _client_key(device_conf_file, key))
    client_id = np.array([int(key) for key in ids], dtype=np.int64)
    if len(np.unique(client_id)) != len(client_id):
        raise TraceError.at(device_conf_file, "each client id once")
    compute = [_number(device_conf_file, key, capacity[key], "computation") for key in ids]
    bandwidth = [_number(device_conf_file, key, capacity[key], "communication") for key in ids]
    behaviour = {} if device_avail_file is None else _behaviour(device_avail_file, client_id, match)
    return _build(device_conf_file, np.array(compute), np.array(bandwidth), client_id=client_id, **behaviour)


def _behaviour(path: str | Path, client_id: np.ndarray, match: str) -> dict[str, Any]:
    """Availability and device model of each client from a ``client_behave_trace`` pickle."""
    behave = read_plain_pickle(path)
    if not isinstance(behave, dict) or not behave:
        raise TraceError.at(path, "a non-empty dict {client id: {active, inactive, finish_time}}")
    keys = list(behave)
    by_id = {_client_key(path, key): key for key in keys}
    chosen = [by_id.get(int(c)) if match == "id" else keys[int(c) % len(keys)] for c in client_id]
    entries = [(key, None if key is None else behave[key]) for key in chosen]
    models = [entry.get("model") if isinstance(entry, dict) else None for _, entry in entries]
    models = [model if isinstance(model, str) and model else None for model in models]
    availability = _behave_availability(path, entries)
    return {"model": Categorical.encode(models), "availability": availability}


def _behave_availability(path: str | Path, entries: list[tuple[Any, Any]]) -> Availability:
    """Availability of clients given, in row order, as ``(id, entry)`` where ``entry`` holds
    FedScale's ``active``/``inactive``/``finish_time`` (None: always available)."""
    owner, starts, ends = [], [], []
    period = np.zeros(len(entries), dtype=np.int64)
    for row, (key, entry) in enumerate(entries):
        if entry is not None:
            active, inactive, period[row] = _intervals(path, key, entry)
            owner.extend([row] * len(active))
            starts.extend(active)
            ends.extend(inactive)
    return normalize_intervals(np.array(owner, dtype=np.int64), np.array(starts, dtype=np.int64),
                               np.array(ends, dtype=np.int64), period)


def _build(path: str | Path, compute: np.ndarray, bandwidth: np.ndarray, **columns: Any) -> Fleet:
    """``Fleet.create`` with its complaints reported against ``path``."""
    try:
        return Fleet.create(compute, bandwidth, **columns)
    except ValueError as err:
        raise TraceError.at(path, f"a consistent fleet ({err})") from None


# ---------------------------------------------------------------- our .npz

def _columns(fleet: Fleet) -> dict[str, np.ndarray]:
    """Every array of ``fleet`` under its file name."""
    out = {"client_id": fleet.client_id, "compute_ms": fleet.compute_ms, "bandwidth_kbps": fleet.bandwidth_kbps,
           **{name: getattr(fleet, name) for name in DESCRIPTIVE_FLOATS}}
    for name in CATEGORICALS:
        out[f"{name}_codes"] = getattr(fleet, name).codes
        out[f"{name}_vocab"] = getattr(fleet, name).vocab.astype(np.str_)
    for name in DYNAMICS:
        trace = getattr(fleet, name)
        out[f"{name}_values"] = trace.library.values
        out[f"{name}_step_seconds"] = np.float64(trace.library.step_seconds)
        out[f"{name}_default"] = np.float64(trace.library.default)
        out[f"{name}_template"] = trace.template
        out[f"{name}_phase"] = trace.phase
    availability = fleet.availability
    out.update(availability_offsets=availability.offsets, availability_starts=availability.starts,
               availability_ends=availability.ends, availability_period=availability.period)
    return out


_SCHEMA: dict[str, tuple[type, int]] = {
    "client_id": (np.int64, 1), "compute_ms": (np.float32, 1), "bandwidth_kbps": (np.float32, 1),
    **{name: (np.float32, 1) for name in DESCRIPTIVE_FLOATS},
    **{f"{name}_codes": (np.int32, 1) for name in CATEGORICALS},
    **{f"{name}_vocab": (np.str_, 1) for name in CATEGORICALS},
    **{f"{name}_values": (np.float32, 2) for name in DYNAMICS},
    **{f"{name}_step_seconds": (np.float64, 0) for name in DYNAMICS},
    **{f"{name}_default": (np.float64, 0) for name in DYNAMICS},
    **{f"{name}_template": (np.int32, 1) for name in DYNAMICS},
    **{f"{name}_phase": (np.float32, 1) for name in DYNAMICS},
    "availability_offsets": (np.int64, 1), "availability_starts": (np.int32, 1),
    "availability_ends": (np.int32, 1), "availability_period": (np.int32, 1),
}


def _fleet_from_columns(path: str | Path, columns: dict[str, np.ndarray]) -> Fleet:
    """A fleet from arrays named as in ``_SCHEMA`` (already checked for kind and rank)."""
    def dynamic(name: str) -> DynamicTrace:
        library = StepTraces(float(columns[f"{name}_step_seconds"]), columns[f"{name}_values"],
                             float(columns[f"{name}_default"]))
        return DynamicTrace(library, columns[f"{name}_template"], columns[f"{name}_phase"])

    try:
        availability = Availability(*(columns[f"availability_{part}"] for part in ("offsets", "starts", "ends",
                                                                                   "period")))
        return Fleet(client_id=columns["client_id"], compute_ms=columns["compute_ms"],
                     bandwidth_kbps=columns["bandwidth_kbps"],
                     **{name: Categorical(columns[f"{name}_codes"], columns[f"{name}_vocab"]) for name in CATEGORICALS},
                     **{name: columns[name] for name in DESCRIPTIVE_FLOATS},
                     **{name: dynamic(name) for name in DYNAMICS}, availability=availability)
    except ValueError as err:
        raise TraceError.at(path, f"a consistent fleet of {len(columns['compute_ms'])} clients ({err})") from None


def save_fleet(fleet: Fleet, path: str | Path) -> None:
    """Write ``fleet`` to ``path`` as one compressed ``.npz`` (no pickled objects)."""
    with open(path, "wb") as handle:
        np.savez_compressed(handle, format=np.str_(FORMAT_NAME), version=np.int64(FORMAT_VERSION), **_columns(fleet))


def load_fleet(path: str | Path) -> Fleet:
    """The fleet saved at ``path`` by ``save_fleet``."""
    try:
        archive = np.load(path, allow_pickle=False)
    except OSError as err:
        raise TraceError.at(path, f"a readable .npz fleet ({err})") from None
    except (ValueError, EOFError) as err:
        raise TraceError.at(path, f"a .npz archive ({err})") from None
    with archive:
        names = set(archive.files)
        if "format" not in names or str(archive["format"]) != FORMAT_NAME:
            raise TraceError.at(path, f"a '{FORMAT_NAME}' archive written by save_fleet")
        if int(archive["version"]) != FORMAT_VERSION:
            raise TraceError.at(path, f"format version {FORMAT_VERSION}, got {int(archive['version'])}")
        columns: dict[str, np.ndarray] = {}
        for name, (dtype, ndim) in _SCHEMA.items():
            if name not in names:
                raise TraceError.at(path, f"an array named '{name}'")
            try:
                value = archive[name]
            except ValueError as err:
                raise TraceError.at(path, f"'{name}' as a plain array ({err})") from None
            kind = np.dtype(dtype).kind
            if value.dtype.kind not in (kind, "u" if kind == "i" else kind) or value.ndim != ndim:
                raise TraceError.at(path, f"'{name}' as a {ndim}-d {np.dtype(dtype).name} array, "
                                          f"got {value.ndim}-d {value.dtype}")
            columns[name] = value if kind == "U" else value.astype(dtype, copy=False)
    return _fleet_from_columns(path, columns)


# ---------------------------------------------------------------- JSON

_JSON_FLOATS = ("computation", "communication", *DESCRIPTIVE_FLOATS)
_JSON_KEYS = {"id", "active", "inactive", "finish_time", "duration", *_JSON_FLOATS, *CATEGORICALS,
              *(f"{name}_{part}" for name in DYNAMICS for part in ("template", "phase"))}


def _json_library(path: str | Path, name: str, spec: Any) -> StepTraces:
    default = np.nan if name == "battery" else 1.0
    if spec is None:
        return StepTraces.empty(default)
    try:
        values = np.array(spec["templates"], dtype=np.float32)
        return StepTraces(float(spec["step_seconds"]), values.reshape(len(values), -1), default)
    except (TypeError, KeyError, ValueError) as err:
        raise TraceError.at(path, f"traces.{name} as {{step_seconds, templates: [[values], ...]}} ({err})") from None


def fleet_from_json(path: str | Path) -> Fleet:
    """A fleet from a JSON list of clients (FedScale-style keys: ``id``, ``computation``,
    ``communication``, optional ``active``/``inactive``/``finish_time``, ``model``, ``brand``,
    ``os_version``, descriptive numbers, ``<rate|cpu|battery>_template``/``_phase``), or from
    the object form ``{"format", "version", "traces", "clients"}`` that ``fleet_to_json`` writes."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise TraceError.at(path, f"a readable JSON file ({err.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TraceError.at(path, f"valid JSON ({err})") from None
    traces: dict[str, Any] = {}
    if isinstance(document, dict):
        if document.get("format") != FORMAT_NAME or document.get("version") != FORMAT_VERSION:
            raise TraceError.at(path, f"format '{FORMAT_NAME}' version {FORMAT_VERSION}, or a list of clients")
        traces, document = document.get("traces") or {}, document.get("clients")
        if not isinstance(traces, dict) or set(traces) - set(DYNAMICS):
            raise TraceError.at(path, f"'traces' as an object with keys among {list(DYNAMICS)}")
    if not isinstance(document, list) or not document:
        raise TraceError.at(path, "a non-empty list of clients")
    for index, entry in enumerate(document):
        if not isinstance(entry, dict) or "id" not in entry:
            raise TraceError.at(path, f"client #{index} as an object with an 'id'")
        unknown = set(entry) - _JSON_KEYS
        if unknown:
            raise TraceError.at(path, f"client {entry['id']}: only keys among {sorted(_JSON_KEYS)}, "
                                      f"got {sorted(unknown)}")
    clients = sorted(document, key=lambda entry: _client_key(path, entry["id"]))

    def floats(field: str, required: bool) -> np.ndarray:
        return np.array([_number(path, c["id"], c, field, positive=required) if required or c.get(field) is not None
                         else np.nan for c in clients], dtype=np.float64)

    def labels(field: str) -> Categorical:
        values = [c.get(field) for c in clients]
        if any(v is not None and not isinstance(v, str) for v in values):
            raise TraceError.at(path, f"'{field}' as a string")
        return Categorical.encode(values)

    def dynamic(name: str) -> DynamicTrace:
        template = [c.get(f"{name}_template", -1) for c in clients]
        phase = [c.get(f"{name}_phase", 0.0) for c in clients]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in template):
            raise TraceError.at(path, f"'{name}_template' as an integer")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in phase):
            raise TraceError.at(path, f"'{name}_phase' as a number of seconds")
        return DynamicTrace(_json_library(path, name, traces.get(name)), np.array(template, dtype=np.int32),
                            np.array(phase, dtype=np.float32))

    traced = [(c["id"], c if {"active", "inactive", "finish_time"} & set(c) else None) for c in clients]
    availability = _behave_availability(path, traced)
    return _build(path, floats("computation", True), floats("communication", True),
                  client_id=np.array([_client_key(path, c["id"]) for c in clients], dtype=np.int64),
                  **{name: labels(name) for name in CATEGORICALS},
                  **{name: floats(name, False).astype(np.float32) for name in DESCRIPTIVE_FLOATS},
                  **{name: dynamic(name) for name in DYNAMICS}, availability=availability)


def fleet_to_json(fleet: Fleet, path: str | Path) -> None:
    """Write ``fleet`` as JSON (object form, unknown fields omitted); meant for small fleets."""
    availability = fleet.availability
    clients = []
    for row in range(fleet.num_clients):
        client: dict[str, Any] = {"id": int(fleet.client_id[row]),
                                  "computation": float(fleet.compute_ms[row]),
                                  "communication": float(fleet.bandwidth_kbps[row])}
        for name in DESCRIPTIVE_FLOATS:
            value = float(getattr(fleet, name)[row])
            if np.isfinite(value):
                client[name] = value
        for name in CATEGORICALS:
            label = getattr(fleet, name).label(row)
            if label is not None:
                client[name] = label
        for name in DYNAMICS:
            trace = getattr(fleet, name)
            if trace.template[row] >= 0:
                client[f"{name}_template"] = int(trace.template[row])
                client[f"{name}_phase"] = float(trace.phase[row])
        if availability.period[row] > 0:
            span = slice(availability.offsets[row], availability.offsets[row + 1])
            client.update(active=availability.starts[span].tolist(), inactive=availability.ends[span].tolist(),
                          finish_time=int(availability.period[row]))
        clients.append(client)
    traces = {name: {"step_seconds": getattr(fleet, name).library.step_seconds,
                     "templates": getattr(fleet, name).library.values.tolist()}
              for name in DYNAMICS if getattr(fleet, name).library.num_templates}
    document = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "traces": traces, "clients": clients}
    Path(path).write_text(json.dumps(document), encoding="utf-8")


# ---------------------------------------------------------------- generator

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
    distributions and their sources are listed in this module's docstring."""
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


# ---------------------------------------------------------------- entry points

_LOADERS: dict[str, Callable[[str | Path], Fleet]] = {".npz": load_fleet, ".json": fleet_from_json}


def load_clients(path: str | Path) -> Fleet:
    """The fleet in ``path``, read according to its extension (``.npz`` or ``.json``)."""
    loader = _LOADERS.get(Path(path).suffix.lower())
    if loader is None:
        raise TraceError.at(path, "a .npz or .json fleet (FedScale pickles: load_fedscale)")
    return loader(path)


def default_fleet_path() -> str:
    """The generated 2,000-client fleet shipped with the package."""
    return str(Path(__file__).resolve().parent / "data" / "fleet_small.npz")


def main(argv: list[str] | None = None) -> int:
    """``python -m fedscale.cloud.internal.traces generate --clients N --seed S --out PATH``."""
    parser = argparse.ArgumentParser(prog="python -m fedscale.cloud.internal.traces")
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="write a synthetic fleet as .npz or .json")
    generate.add_argument("--clients", type=int, required=True)
    generate.add_argument("--seed", type=int, required=True)
    generate.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    fleet = generate_fleet(args.clients, args.seed)
    (fleet_to_json if Path(args.out).suffix.lower() == ".json" else save_fleet)(fleet, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def job_fleet(conf: Any) -> Fleet:
    """A job's device fleet: FedScale's pickles if ``device_conf_file`` is set, else
    ``clients_file`` (.npz/.json), else the small fleet that ships with the project."""
    if conf.device_conf_file:
        return load_fedscale(conf.device_conf_file, conf.device_avail_file or None)
    return load_clients(conf.clients_file or default_fleet_path())
