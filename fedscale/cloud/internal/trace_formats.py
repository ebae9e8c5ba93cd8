"""Device-trace files in and out: FedScale's pickles (read safely), our compact ``.npz``, and a
JSON form for small hand-written fleets. Every reader either returns a consistent ``Fleet`` or
raises ``TraceError`` with one line naming the file and what was expected there.

* FedScale pickles (FedScale, Lai et al., ICML 2022). ``client_device_capacity``: ``{id:
  {"computation": ms per sample, "communication": kbps}}``; ``client_behave_trace``: ``{id:
  {"active": [starts], "inactive": [ends], "finish_time": period, "duration": available seconds,
  "model": str}}``. Read with an unpickler that admits only plain containers and numbers, so a
  pickle cannot run code; no pickle is ever written.
* ``.npz`` (``save_fleet``/``load_fleet``): every ``Fleet`` column under its own name, read
  with ``allow_pickle=False``; vocabularies are unicode arrays; ``format``/``version`` keys.
* ``.json`` (``fleet_from_json``/``fleet_to_json``): a list of clients with FedScale-style keys,
  or ``{"format", "version", "traces": {...}, "clients": [...]}`` carrying template libraries.

``job_fleet`` picks the fleet a job runs on from its three file settings. The formats and the
statistics of FedScale's files are described in ``docs/device-traces.md``.
"""
from __future__ import annotations

import collections
import json
import math
import pickle
import re
import reprlib
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fedscale.cloud.internal.client_metadata import (
    CATEGORICALS,
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
INT32_END = 2 ** 31


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
    """``key`` as an int64 client id (an int, or a string of at most 18 digits)."""
    if isinstance(key, str) and re.fullmatch(r"\s*-?[0-9]{1,18}\s*", key):
        return int(key)
    if isinstance(key, int) and _is_finite_number(key):
        return key
    raise TraceError.at(path, f"integer client ids as keys, got {reprlib.repr(key)}")


def _client_ids(path: str | Path, keys: list[Any]) -> np.ndarray:
    """The integer ids of ``keys``, each present once."""
    client_id = np.array([_client_key(path, key) for key in keys], dtype=np.int64)
    if len(np.unique(client_id)) != len(client_id):
        raise TraceError.at(path, "each client id once")
    return client_id


def _is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a finite float or an int that fits int64 (not a bool)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and -2 ** 63 <= value < 2 ** 63


def _is_seconds(value: Any) -> bool:
    """Whether ``value`` is a time the int32 interval columns hold."""
    return _is_finite_number(value) and 0 <= value < INT32_END


def _number(path: str | Path, key: Any, entry: Any, field: str, positive: bool = True) -> float:
    value = entry.get(field) if isinstance(entry, dict) else None
    if not _is_finite_number(value) or value < 0 or (positive and value == 0):
        raise TraceError.at(path, f"client {key}: a {'positive' if positive else 'non-negative'} number under "
                                  f"'{field}', got {reprlib.repr(value)}")
    return float(value)


def _intervals(path: str | Path, key: Any, entry: Any) -> tuple[list[int], list[int], int]:
    """``(starts, ends, period)`` of one behave-trace entry, checked."""
    if not isinstance(entry, dict):
        raise TraceError.at(path, f"client {key}: a dict with active, inactive and finish_time")
    period = _number(path, key, entry, "finish_time")
    if not _is_seconds(period):
        raise TraceError.at(path, f"client {key}: 'finish_time' below 2^31 seconds, got {period!r}")
    active, inactive = entry.get("active"), entry.get("inactive")
    if not (isinstance(active, list) and isinstance(inactive, list) and len(active) == len(inactive)
            and all(_is_seconds(v) for v in active + inactive)):
        raise TraceError.at(path, f"client {key}: 'active' and 'inactive' as equally long lists of seconds "
                                  "in [0, 2^31)")
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
    client_id = _client_ids(device_conf_file, ids)
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
        with np.errstate(over="ignore"):
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


_UNREADABLE_MEMBER = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
_MAY_BE_UNKNOWN = frozenset({*DESCRIPTIVE_FLOATS, *(f"{name}_default" for name in DYNAMICS)})


def _member(path: str | Path, archive: Any, name: str) -> np.ndarray:
    """Array ``name`` of an open ``.npz`` archive."""
    if name not in archive.files:
        raise TraceError.at(path, f"an array named '{name}'")
    try:
        return archive[name]
    except _UNREADABLE_MEMBER as err:
        raise TraceError.at(path, f"'{name}' as a plain array ({err})") from None


def _column(path: str | Path, archive: Any, name: str) -> np.ndarray:
    """Array ``name`` converted to its ``_SCHEMA`` type, refused if its kind, rank or values do not
    fit (integers out of range, infinities, NaN outside the columns where it means unknown,
    negative device specs)."""
    dtype, ndim = _SCHEMA[name]
    value = _member(path, archive, name)
    kind = np.dtype(dtype).kind
    if value.dtype.kind not in (kind, "u" if kind == "i" else kind) or value.ndim != ndim:
        raise TraceError.at(path, f"'{name}' as a {ndim}-d {np.dtype(dtype).name} array, "
                                  f"got {value.ndim}-d {value.dtype}")
    if kind == "U":
        return value
    column = value.astype(dtype, copy=False)
    if kind == "i" and not np.array_equal(column, value):
        raise TraceError.at(path, f"'{name}' as {np.dtype(dtype).name} values")
    if kind == "f":
        known = column[~np.isnan(column)] if name in _MAY_BE_UNKNOWN else column
        if not np.isfinite(known).all() or (name in DESCRIPTIVE_FLOATS and (known < 0).any()):
            wanted = "non-negative numbers" if name in DESCRIPTIVE_FLOATS else "numbers"
            raise TraceError.at(path, f"'{name}' as finite {wanted}{' or NaN' if name in _MAY_BE_UNKNOWN else ''}")
    return column


def load_fleet(path: str | Path) -> Fleet:
    """The fleet saved at ``path`` by ``save_fleet``."""
    try:
        archive = np.load(path, allow_pickle=False)
    except OSError as err:
        raise TraceError.at(path, f"a readable .npz fleet ({err})") from None
    except (ValueError, EOFError, zipfile.BadZipFile) as err:
        raise TraceError.at(path, f"a .npz archive ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise TraceError.at(path, f"a .npz archive, got a single {archive.dtype} array")
    with archive:
        if "format" not in archive.files or str(_member(path, archive, "format")) != FORMAT_NAME:
            raise TraceError.at(path, f"a '{FORMAT_NAME}' archive written by save_fleet")
        version = _member(path, archive, "version")
        if version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
            raise TraceError.at(path, f"format version {FORMAT_VERSION}, got {version.tolist()!r}")
        columns = {name: _column(path, archive, name) for name in _SCHEMA}
    if not len(columns["compute_ms"]):
        raise TraceError.at(path, "at least one client")
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
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
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
    client_id = _client_ids(path, [c["id"] for c in clients])

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
        if not all(isinstance(v, int) and not isinstance(v, bool) and -1 <= v < INT32_END for v in template):
            raise TraceError.at(path, f"'{name}_template' as an integer template index (-1: none)")
        if not all(_is_finite_number(v) for v in phase):
            raise TraceError.at(path, f"'{name}_phase' as a finite number of seconds")
        return DynamicTrace(_json_library(path, name, traces.get(name)), np.array(template, dtype=np.int32),
                            np.array(phase, dtype=np.float32))

    traced = [(c["id"], c if {"active", "inactive", "finish_time"} & set(c) else None) for c in clients]
    availability = _behave_availability(path, traced)
    return _build(path, floats("computation", True), floats("communication", True),
                  client_id=client_id,
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



_LOADERS: dict[str, Callable[[str | Path], Fleet]] = {".npz": load_fleet, ".json": fleet_from_json}


def load_clients(path: str | Path) -> Fleet:
    """The fleet in ``path``, read according to its extension (``.npz`` or ``.json``)."""
    loader = _LOADERS.get(Path(path).suffix.lower())
    if loader is None:
        raise TraceError.at(path, "a .npz or .json fleet (FedScale's pickles go in device_conf_file)")
    return loader(path)


def default_fleet_path() -> str:
    """The generated 2,000-client fleet shipped with the package (``generate --clients 2000
    --seed 1``)."""
    return str(Path(__file__).resolve().parent / "data" / "fleet_small.npz")


def job_fleet(clients_file: str, device_conf_file: str, device_avail_file: str) -> Fleet:
    """The fleet a job with these settings runs on (an empty string means unset): FedScale's
    pickles if ``device_conf_file`` is set (with ``device_avail_file``'s availability, if set),
    else ``clients_file`` (.npz/.json), else the small fleet that ships with the project.

    Raises ``TraceError`` (a ValueError) with one line naming the file and the problem for any
    file that cannot be read as that fleet; a pickle is refused, unrun, if it names anything but
    plain containers and numbers. Calling it while checking a job refuses bad traces before any
    process starts."""
    if device_conf_file:
        return load_fedscale(device_conf_file, device_avail_file or None)
    if device_avail_file:
        raise TraceError.at(device_avail_file, "device_conf_file (FedScale's device capacities) to be set as well")
    return load_clients(clients_file or default_fleet_path())
