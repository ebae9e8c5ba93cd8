"""The client fleet as columns: device capacities, 48-hour dynamic traces and availability,
with the vectorised kernels the time model (``fedscale.cloud.time_model``) evaluates them with.

Why columns: a simulated fleet holds up to 1,000,000 devices, and the aggregator asks "who is
online" and "how long does each selected client take" every round. One ``Fleet`` keeps every
client's data in numpy arrays indexed by device row ``0..n-1``; every query takes an array of
rows and answers with an array, without a Python loop over clients.

Rates are piecewise constant on a regular grid, so a phase that crosses a step boundary (or the
end of the cycle, any number of times) is timed by inverting the running integral of its rate:
one kernel, ``DynamicTrace.time_to_accumulate``, serves transfers and compute alike.

Dynamic traces are not stored per client. A ``StepTraces`` library holds a few hundred
templates on one grid; each client points at a template (``-1``: none, the library's constant
default) and reads it shifted by its own phase offset. Availability intervals are per client
(FedScale's ``active``/``inactive`` lists) in CSR form, repeating with the client's period
(FedScale's ``finish_time``; 0 means always available). Intervals are half-open
``[start, end)`` seconds within the period.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

CYCLE_SECONDS = 48 * 3600
BITS_PER_KILOBIT = 1000.0
DESCRIPTIVE_FLOATS = ("ram_gb", "storage_gb", "battery_mah", "cpu_flops", "gpu_flops", "peak_throughput_mbps")
CATEGORICALS = ("brand", "model", "os_version")
DYNAMICS = ("rate", "cpu", "battery")

Times = float | np.ndarray


def _per_id(value: Times, size: int) -> np.ndarray:
    """``value`` (scalar or one per id) as a float64 array of length ``size``."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (size,))


@dataclass(frozen=True)
class StepTraces:
    """A library of piecewise-constant cyclic templates on one regular grid.

    ``values[k, j]`` holds template ``k`` on ``[j * step_seconds, (j + 1) * step_seconds)``; the
    cycle (``step_seconds * num_steps``, 48 h by default) repeats forever. Template index ``-1``
    reads the constant ``default`` (1.0 for rate and cpu factors, NaN for an unknown battery).
    """

    step_seconds: float
    values: np.ndarray
    default: float = 1.0

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] < 1:
            raise ValueError(f"trace values must be [num_templates, num_steps], got shape {self.values.shape}")
        if not (np.isfinite(self.step_seconds) and self.step_seconds > 0):
            raise ValueError(f"trace step must be a positive number of seconds, got {self.step_seconds}")
        if not np.isfinite(self.values).all():
            raise ValueError("trace values must be finite")

    @classmethod
    def empty(cls, default: float = 1.0) -> StepTraces:
        """A library with no templates: every client reads ``default``."""
        return cls(float(CYCLE_SECONDS), np.zeros((0, 1), dtype=np.float32), default)

    @property
    def num_templates(self) -> int:
        return self.values.shape[0]

    @property
    def num_steps(self) -> int:
        return self.values.shape[1]

    @property
    def cycle_seconds(self) -> float:
        return self.step_seconds * self.num_steps

    @cached_property
    def _rows(self) -> np.ndarray:
        """The templates in float64 with the default appended as the last row."""
        default_row = np.full((1, self.num_steps), self.default)
        return np.concatenate([self.values.astype(np.float64), default_row])

    @cached_property
    def _cumulative(self) -> np.ndarray:
        """``[T + 1, S + 1]``: integral of each row from 0 to each grid point."""
        rows = self._rows
        return np.concatenate([np.zeros((len(rows), 1)), np.cumsum(rows * self.step_seconds, axis=1)], axis=1)

    @cached_property
    def positive(self) -> bool:
        """Whether every template and the default are positive (required to scale a speed)."""
        return bool((self._rows > 0).all())

    @cached_property
    def _search_table(self) -> tuple[np.ndarray, np.ndarray]:
        """All rows' cumulative integrals laid end to end, each shifted past the previous row's
        total, so one ``searchsorted`` locates a target inside any row; and the shifts."""
        if not self.positive:
            raise ValueError("a trace used as a rate must be positive everywhere")
        cumulative = self._cumulative
        shift = np.concatenate([[0.0], np.cumsum(cumulative[:-1, -1])])
        return (cumulative + shift[:, None]).ravel(), shift

    def cycle_mean(self, template: np.ndarray) -> np.ndarray:
        """Each template's mean over its cycle (the default's for ``-1``)."""
        return self._cumulative[self._row(template), -1] / self.cycle_seconds

    def _row(self, template: np.ndarray) -> np.ndarray:
        return np.where(template < 0, self.num_templates, template)

    def integral(self, template: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Integral of each template from 0 to ``x`` (any real ``x``; cycles accumulate)."""
        row = self._row(template)
        cycles = np.floor(x / self.cycle_seconds)
        within = x - cycles * self.cycle_seconds
        step = np.minimum(np.floor(within / self.step_seconds).astype(np.int64), self.num_steps - 1)
        return (cycles * self._cumulative[row, -1] + self._cumulative[row, step]
                + self._rows[row, step] * (within - step * self.step_seconds))

    def at_steps(self, template: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Each template's value on grid step ``steps`` (any integers; cycles repeat), ``template``
        broadcast against ``steps``."""
        return self._rows[self._row(template), np.mod(steps, self.num_steps).astype(np.int64)]

    def invert(self, template: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The ``x`` at which ``integral(template, x) == target`` (templates must be positive)."""
        keys, shift = self._search_table
        row = self._row(template)
        total = self._cumulative[row, -1]
        cycles = np.floor(target / total)
        rest = target - cycles * total
        found = np.searchsorted(keys, shift[row] + rest, side="right") - 1
        step = np.clip(found - row * (self.num_steps + 1), 0, self.num_steps - 1)
        return (cycles * self.cycle_seconds + step * self.step_seconds
                + (rest - self._cumulative[row, step]) / self._rows[row, step])


@dataclass(frozen=True)
class DynamicTrace:
    """Per-client pointers into a shared ``StepTraces``: template row (-1: none) and phase.

    Client ``i`` reads ``library`` at template-local time ``t + phase[i]``.
    """

    library: StepTraces
    template: np.ndarray
    phase: np.ndarray

    @classmethod
    def none(cls, num_clients: int, default: float = 1.0) -> DynamicTrace:
        """No client has a template; every client reads ``default``."""
        return cls(StepTraces.empty(default), np.full(num_clients, -1, dtype=np.int32),
                   np.zeros(num_clients, dtype=np.float32))

    def take(self, ids: np.ndarray) -> DynamicTrace:
        return DynamicTrace(self.library, self.template[ids], self.phase[ids])

    def cycle_mean(self, ids: np.ndarray) -> np.ndarray:
        """The mean over a whole cycle of each id's trace."""
        return self.library.cycle_mean(self.template[ids])

    def _local(self, ids: np.ndarray, t: Times) -> np.ndarray:
        return _per_id(t, len(ids)) + self.phase[ids]

    def recent_steps(self, ids: np.ndarray, t: Times, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``(values, midpoints)``, each ``[len(ids), count]``, oldest first: the last ``count``
        piecewise-constant values of each id's trace at or before ``t`` (the step holding ``t``
        and the ``count - 1`` before it) and the virtual time at the middle of each step."""
        library = self.library
        phase = self.phase[ids].astype(np.float64)[:, None]
        steps = np.floor(self._local(ids, t) / library.step_seconds)[:, None] + np.arange(1 - count, 1)
        midpoints = (steps + 0.5) * library.step_seconds - phase
        return library.at_steps(self.template[ids, None], steps), midpoints

    def time_to_accumulate(self, ids: np.ndarray, t0: Times, amount: Times) -> np.ndarray:
        """Seconds each id needs, from ``t0``, until the integral of its trace reaches ``amount``.

        This is the one time kernel: ``amount`` is work divided by the client's nominal rate
        (bits / bits-per-second for transfers, nominal compute seconds for training), so the
        answer is the phase's duration under the time-varying factor.
        """
        template = self.template[ids]
        start = self._local(ids, t0)
        target = self.library.integral(template, start) + _per_id(amount, len(ids))
        return np.maximum(self.library.invert(template, target) - start, 0.0)


@dataclass(frozen=True)
class Categorical:
    """Codes into a vocabulary of strings; code -1 means unknown."""

    codes: np.ndarray
    vocab: np.ndarray

    @classmethod
    def missing(cls, num_clients: int) -> Categorical:
        return cls(np.full(num_clients, -1, dtype=np.int32), np.array([], dtype=np.str_))

    @classmethod
    def encode(cls, labels: list[str | None]) -> Categorical:
        """Codes for ``labels`` (None: unknown) with a sorted vocabulary."""
        vocab = sorted({label for label in labels if label is not None})
        index = {label: code for code, label in enumerate(vocab)}
        codes = np.array([-1 if label is None else index[label] for label in labels], dtype=np.int32)
        return cls(codes, np.array(vocab, dtype=np.str_))

    def label(self, row: int) -> str | None:
        code = int(self.codes[row])
        return None if code < 0 else str(self.vocab[code])

    def take(self, ids: np.ndarray) -> Categorical:
        return Categorical(self.codes[ids], self.vocab)


def _gather(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[index]`` with ``index`` clipped into range (zeros if ``values`` is empty); the
    callers mask the entries whose index was out of range."""
    if len(values) == 0:
        return np.zeros(len(index), dtype=values.dtype)
    return values[np.clip(index, 0, len(values) - 1)]


def _bisect_right(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, key: np.ndarray) -> np.ndarray:
    """For each query, the first index in ``values[lo:hi]`` (sorted) whose value exceeds ``key``;
    a vectorised binary search over many CSR slices at once."""
    lo, hi = lo.copy(), hi.copy()
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) // 2
        right = open_ & (_gather(values, mid) <= key)
        lo = np.where(right, mid + 1, lo)
        hi = np.where(open_ & ~right, mid, hi)


class _Position(NamedTuple):
    """Where each queried client stands in its availability trace at time ``t``."""

    t: np.ndarray
    base: np.ndarray  # when the current period began
    period: np.ndarray
    first: np.ndarray  # the client's interval slice is [first, stop)
    stop: np.ndarray
    last_started: np.ndarray  # last interval starting at or before t in the period (first - 1: none)
    online: np.ndarray


@dataclass(frozen=True)
class Availability:
    """Per-client availability intervals (CSR) repeating with a per-client period.

    Client ``i`` is online on ``[starts[k], ends[k])`` (mod ``period[i]``) for ``k`` in
    ``offsets[i]:offsets[i+1]``; intervals are sorted, non-empty, inside ``[0, period]`` and
    separated by gaps. ``period[i] == 0`` means always available (and no intervals).
    """

    offsets: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    period: np.ndarray

    @classmethod
    def always(cls, num_clients: int) -> Availability:
        return cls(np.zeros(num_clients + 1, dtype=np.int64), np.zeros(0, dtype=np.int32),
                   np.zeros(0, dtype=np.int32), np.zeros(num_clients, dtype=np.int32))

    def validate(self) -> None:
        """Raise ValueError unless the arrays describe normalised intervals (see the class)."""
        n = len(self.period)
        if len(self.offsets) != n + 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.starts):
            raise ValueError("availability offsets must run from 0 to the number of intervals, one per client + 1")
        counts = np.diff(self.offsets)
        if (counts < 0).any() or len(self.ends) != len(self.starts) or (self.period < 0).any():
            raise ValueError("availability offsets must be non-decreasing and periods non-negative")
        if (counts[self.period == 0] > 0).any():
            raise ValueError("an always-available client (period 0) cannot have intervals")
        owner_period = np.repeat(self.period, counts)
        if ((self.starts < 0) | (self.starts >= self.ends) | (self.ends > owner_period)).any():
            raise ValueError("every availability interval must satisfy 0 <= start < end <= period")
        begins_client = np.zeros(len(self.starts) + 1, dtype=bool)
        begins_client[self.offsets] = True
        follows = ~begins_client[1:-1]
        if (self.starts[1:][follows] <= self.ends[:-1][follows]).any():
            raise ValueError("a client's availability intervals must be sorted and separated by gaps")

    def take(self, ids: np.ndarray) -> Availability:
        counts = self.offsets[ids + 1] - self.offsets[ids]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        gather = np.repeat(self.offsets[ids] - offsets[:-1], counts) + np.arange(offsets[-1])
        return Availability(offsets, self.starts[gather], self.ends[gather], self.period[ids])

    def _locate(self, ids: np.ndarray, t: Times) -> _Position:
        t = _per_id(t, len(ids))
        period = self.period[ids]
        within = np.mod(t, np.where(period > 0, period, 1).astype(np.float64))
        first, stop = self.offsets[ids], self.offsets[ids + 1]
        last_started = _bisect_right(self.starts, first, stop, within) - 1
        inside = (last_started >= first) & (within < _gather(self.ends, last_started))
        return _Position(t, t - within, period, first, stop, last_started, (period == 0) | inside)

    def is_active(self, ids: np.ndarray, t: Times) -> np.ndarray:
        """Whether each id is online at ``t``."""
        return self._locate(ids, t).online

    def online_until(self, ids: np.ndarray, t: Times) -> np.ndarray:
        """When each id next goes offline: the end of the interval containing ``t`` (followed
        across the period's end when the last interval meets the first), ``inf`` if it never
        does, ``t`` itself if it is offline at ``t``."""
        at = self._locate(ids, t)
        end = _gather(self.ends, at.last_started)
        wraps = (end == at.period) & (_gather(self.starts, at.first) == 0)
        until = at.base + end + np.where(wraps, _gather(self.ends, at.first), 0)
        never_ends = (at.period == 0) | (wraps & (at.last_started == at.first))
        return np.where(at.online, np.where(never_ends, np.inf, until), at.t)

    def next_online(self, ids: np.ndarray, t: Times) -> np.ndarray:
        """The earliest time ``>= t`` at which each id is online (``inf`` if never)."""
        at = self._locate(ids, t)
        upcoming = at.last_started + 1
        start = np.where(upcoming < at.stop, at.base + _gather(self.starts, upcoming),
                         at.base + at.period + _gather(self.starts, at.first))
        return np.where(at.online, at.t, np.where(at.stop > at.first, start, np.inf))

    def stays_active(self, ids: np.ndarray, t0: Times, t1: Times) -> np.ndarray:
        """Whether each id is online throughout ``[t0, t1)``."""
        return self.is_active(ids, t0) & (self.online_until(ids, t0) >= _per_id(t1, len(ids)))


def normalize_intervals(owner: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                        period: np.ndarray) -> Availability:
    """Availability from loose intervals: ``owner[k]`` is the client row of interval
    ``[starts[k], ends[k])``; intervals are clipped to ``[0, period]``, empty ones dropped, and
    overlapping or touching ones merged. Clients with period 0 are always available."""
    period = np.asarray(period, dtype=np.int64)
    owner = np.asarray(owner, dtype=np.int64)
    starts = np.maximum(np.asarray(starts, dtype=np.int64), 0)
    ends = np.minimum(np.asarray(ends, dtype=np.int64), period[owner])
    keep = (starts < ends) & (period[owner] > 0)
    owner, starts, ends = owner[keep], starts[keep], ends[keep]
    stride = int(period.max(initial=0)) + 1
    key = owner * stride + starts
    if (key[1:] < key[:-1]).any():
        order = np.argsort(key, kind="stable")
        owner, starts, ends = owner[order], starts[order], ends[order]
    reach = np.maximum.accumulate(ends + owner * stride) - owner * stride
    opens = np.ones(len(starts), dtype=bool)
    opens[1:] = (owner[1:] != owner[:-1]) | (starts[1:] > reach[:-1])
    closes = np.ones(len(starts), dtype=bool)
    closes[:-1] = opens[1:]
    counts = np.bincount(owner[opens], minlength=len(period))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Availability(offsets, starts[opens].astype(np.int32), reach[closes].astype(np.int32),
                        period.astype(np.int32))


@dataclass(frozen=True)
class Fleet:
    """Every client's device data as columns indexed by device row ``0..n-1``.

    Static: ``compute_ms`` (ms per sample, FedScale's ``computation``), ``bandwidth_kbps``
    (nominal downlink, FedScale's ``communication``). Descriptive, for selectors and device
    encoders (NaN or code -1 when unknown): brand, model, os_version (``Categorical``), RAM and
    storage (GB), battery capacity (mAh), CPU/GPU FLOPS, peak WLAN throughput (Mb/s). Dynamic:
    ``rate`` (bandwidth factor), ``cpu`` (free-CPU fraction), ``battery`` (percent). Availability
    intervals. ``client_id`` keeps the source's client ids (row ``i`` is client ``client_id[i]``).
    """

    client_id: np.ndarray
    compute_ms: np.ndarray
    bandwidth_kbps: np.ndarray
    brand: Categorical
    model: Categorical
    os_version: Categorical
    ram_gb: np.ndarray
    storage_gb: np.ndarray
    battery_mah: np.ndarray
    cpu_flops: np.ndarray
    gpu_flops: np.ndarray
    peak_throughput_mbps: np.ndarray
    rate: DynamicTrace
    cpu: DynamicTrace
    battery: DynamicTrace
    availability: Availability

    def __post_init__(self) -> None:
        n = len(self.compute_ms)
        columns = {"client_id": self.client_id, "compute_ms": self.compute_ms,
                   "bandwidth_kbps": self.bandwidth_kbps,
                   **{name: getattr(self, name).codes for name in CATEGORICALS},
                   **{name: getattr(self, name) for name in DESCRIPTIVE_FLOATS},
                   **{f"{name}_template": getattr(self, name).template for name in DYNAMICS},
                   **{f"{name}_phase": getattr(self, name).phase for name in DYNAMICS},
                   "availability_period": self.availability.period}
        for name, column in columns.items():
            if column.shape != (n,):
                raise ValueError(f"{name} must have one entry per client ({n}), got shape {column.shape}")
        for name in ("compute_ms", "bandwidth_kbps"):
            column = getattr(self, name)
            if not (np.isfinite(column) & (column > 0)).all():
                raise ValueError(f"{name} must be positive and finite for every client")
        for name in CATEGORICALS:
            codes = getattr(self, name).codes
            if ((codes < -1) | (codes >= len(getattr(self, name).vocab))).any():
                raise ValueError(f"{name} codes must be -1 or index its vocabulary")
        for name in DYNAMICS:
            trace = getattr(self, name)
            if ((trace.template < -1) | (trace.template >= trace.library.num_templates)).any():
                raise ValueError(f"{name}_template must be -1 or index the {name} library")
        for name in ("rate", "cpu"):
            if not getattr(self, name).library.positive:
                raise ValueError(f"the {name} library must be positive everywhere (it scales a speed)")
        self.availability.validate()

    @classmethod
    def create(cls, compute_ms: np.ndarray, bandwidth_kbps: np.ndarray, **columns: Any) -> Fleet:
        """A fleet from its two required columns; every other field may be given by name and
        defaults to unknown (descriptive), none (dynamic: factor 1, unknown battery), always
        available, and ids ``0..n-1``."""
        n = len(compute_ms)
        defaults: dict[str, Any] = {
            "client_id": np.arange(n, dtype=np.int64),
            **{name: Categorical.missing(n) for name in CATEGORICALS},
            **{name: np.full(n, np.nan, dtype=np.float32) for name in DESCRIPTIVE_FLOATS},
            "rate": DynamicTrace.none(n), "cpu": DynamicTrace.none(n),
            "battery": DynamicTrace.none(n, default=np.nan),
            "availability": Availability.always(n),
        }
        unknown = set(columns) - set(defaults)
        if unknown:
            raise TypeError(f"unknown fleet fields: {sorted(unknown)}")
        return cls(compute_ms=np.asarray(compute_ms, dtype=np.float32),
                   bandwidth_kbps=np.asarray(bandwidth_kbps, dtype=np.float32), **{**defaults, **columns})

    @property
    def num_clients(self) -> int:
        return len(self.compute_ms)

    @property
    def nbytes(self) -> int:
        """Memory held by the fleet's arrays (shared libraries counted once)."""
        seen: dict[int, int] = {}

        def walk(value: Any) -> None:
            if isinstance(value, np.ndarray):
                seen[id(value)] = value.nbytes
            elif hasattr(value, "__dataclass_fields__"):
                for field in fields(value):
                    walk(getattr(value, field.name))

        walk(self)
        return sum(seen.values())

    def take(self, ids: np.ndarray) -> Fleet:
        """The sub-fleet of rows ``ids`` (in that order); template libraries are shared."""
        ids = np.asarray(ids, dtype=np.int64)
        return replace(
            self, client_id=self.client_id[ids], compute_ms=self.compute_ms[ids],
            bandwidth_kbps=self.bandwidth_kbps[ids],
            **{name: getattr(self, name).take(ids) for name in CATEGORICALS + DYNAMICS},
            **{name: getattr(self, name)[ids] for name in DESCRIPTIVE_FLOATS},
            availability=self.availability.take(ids))

    def client(self, row: int) -> ClientMetadata:
        return ClientMetadata(self, row)

    def is_active(self, ids: np.ndarray, t: Times) -> np.ndarray:
        return self.availability.is_active(np.asarray(ids), t)

    def online_until(self, ids: np.ndarray, t: Times) -> np.ndarray:
        return self.availability.online_until(np.asarray(ids), t)

    def next_online(self, ids: np.ndarray, t: Times) -> np.ndarray:
        return self.availability.next_online(np.asarray(ids), t)

    def stays_active(self, ids: np.ndarray, t0: Times, t1: Times) -> np.ndarray:
        return self.availability.stays_active(np.asarray(ids), t0, t1)

    def dynamic_windows(self, ids: np.ndarray, t: Times, num_values: int = 5) -> np.ndarray:
        """``[len(ids), num_values, 3]``: the last ``num_values`` trace values at or before ``t`` of
        the rate factor, cpu availability (fraction) and battery (percent, NaN if unknown), oldest
        first: Bliss's dynamic features (Bossbap/Bliss ``fedscale/cloud/client_manager.py``
        ``extract_last5_windows``). The value at ``t`` is always kept; an earlier step whose
        midpoint falls while the client is offline repeats the next newer value kept, so a window
        reports only what the device saw while it was online."""
        ids = np.asarray(ids)
        later = np.arange(num_values)
        channels = []
        for name in DYNAMICS:
            values, midpoints = getattr(self, name).recent_steps(ids, t, num_values)
            kept = self.availability.is_active(np.repeat(ids, num_values), midpoints.ravel()).reshape(values.shape)
            kept[:, -1] = True
            newer_kept = np.minimum.accumulate(np.where(kept, later, num_values)[:, ::-1], axis=1)[:, ::-1]
            channels.append(np.take_along_axis(values, newer_kept, axis=1))
        return np.stack(channels, axis=2)


class ClientMetadata:
    """One client of a ``Fleet``, with FedScale's per-client method names; every method
    delegates to the fleet's vectorised kernels."""

    def __init__(self, fleet: Fleet, row: int) -> None:
        self.fleet = fleet
        self.row = int(row)
        self._ids = np.array([self.row])

    @property
    def client_id(self) -> int:
        return int(self.fleet.client_id[self.row])

    def is_active(self, cur_time: float) -> bool:
        return bool(self.fleet.is_active(self._ids, cur_time)[0])

    def static_info(self) -> dict[str, Any]:
        """The client's capacities and descriptive fields (None or NaN when unknown)."""
        fleet, row = self.fleet, self.row
        return {"client_id": self.client_id,
                "compute_ms": float(fleet.compute_ms[row]),
                "bandwidth_kbps": float(fleet.bandwidth_kbps[row]),
                **{name: getattr(fleet, name).label(row) for name in CATEGORICALS},
                **{name: float(getattr(fleet, name)[row]) for name in DESCRIPTIVE_FLOATS}}


class OnlineCursor:
    """The online subset of some devices as virtual time moves forward, updated incrementally.

    Each device's state holds until its next change (the end of its availability interval, or
    the start of the next one), so after the first look only the devices whose change time has
    passed are located again: one vectorised comparison over the set plus work proportional to
    the devices that changed. Moving back in time recomputes everything.
    """

    def __init__(self, fleet: Fleet, rows: np.ndarray) -> None:
        self.fleet = fleet
        self.rows = np.asarray(rows, dtype=np.int64)
        self.online = np.zeros(len(self.rows), dtype=bool)
        self.next_change = np.full(len(self.rows), -np.inf)
        self.time = -np.inf

    def advance(self, t: float) -> np.ndarray:
        """Positions (into ``rows``) of the devices online at ``t``."""
        stale = np.arange(len(self.rows)) if t < self.time else np.flatnonzero(self.next_change <= t)
        if len(stale):
            rows = self.rows[stale]
            online = self.fleet.is_active(rows, t)
            self.online[stale] = online
            self.next_change[stale] = np.where(online, self.fleet.online_until(rows, t),
                                               self.fleet.next_online(rows, t))
        self.time = t
        return np.flatnonzero(self.online)

    def next_online_time(self, t: float, among: np.ndarray | None = None) -> float:
        """Earliest time ``>= t`` at which one of the devices (those at the positions ``among``
        only, if given) is online (``inf`` if never)."""
        self.advance(t)
        online, change = (self.online, self.next_change) if among is None else (self.online[among],
                                                                                self.next_change[among])
        return t if online.any() else float(change.min(initial=np.inf))
