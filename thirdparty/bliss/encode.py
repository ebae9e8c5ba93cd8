"""Device metadata and recent device state as fixed-length feature vectors for Bliss's regressors.

Bliss predicts a client's next utility from what the server knows about its device. The public
Bliss code (Bossbap/Bliss, ``thirdparty/bliss/encode.py``) encodes one client at a time from
free-text spec fields into 63 numbers: OS modernity, a 28-brand one-hot, a 27-cluster model
one-hot read from a data file, and min-max scaled RAM, storage, battery, CPU/GPU FLOPS and
WLAN throughput, with unknown values mapped to the minimum. This module encodes the same kinds
of facts from our fleet's typed columns (``Fleet``: brand/model/os_version labels, numbers in
GB, mAh, FLOPS and Mb/s), vectorised over the whole fleet, and with two changes:

* An unknown value is not confused with the smallest one: it is imputed with a typical device's
  value and flagged in its own ``unknown_*`` column, so every model can tell the two apart.
  Typical values are the medians of Bliss's 12,641-device table (Android 5.1-6.0, RAM 2 GB,
  CPU 2.56e10 and GPU 3.25e9 FLOPS, 150 Mb/s; ``docs/bliss.md``), else of our fleet generator
  (storage, battery).
* The model one-hot needs no data file: a model name lands in one of ``MODEL_BUCKETS`` buckets
  by a CRC-32 of its normalised name (stable across runs, processes and machines, unlike
  Python's salted ``hash``). Unlike Bliss's hand-made clusters, buckets group models
  arbitrarily, so they only let a model learn per-bucket offsets.

Spec ranges widen Bliss's (RAM 0.25-4 GB, storage 0.5-128 GB, battery 1,300-9,600 mAh, CPU
4e9-6.72e10 and GPU 0-3.6e11 FLOPS, throughput 72-433 Mb/s) to today's phones: up to 16 GB
RAM, 512 GB storage, 10,000 mAh, Wi-Fi 6 at 2,402 Mb/s; FLOPS span decades, hence log10.

Static layout (``STATIC_FEATURES`` names every column, ``STATIC_DIM`` of them):

=========================  =========================================================
``os_modernity``           release year of the OS version (``ANDROID_YEARS``,
                           ``IOS_YEARS``) min-max scaled over ``OS_YEAR_SCALE``
``os_ios``                 1 for iOS, else 0
``ram_gb`` ... (6 specs)   ``NUMERIC_SCALES``: each spec min-max scaled to its range
                           and clipped; CPU and GPU FLOPS on a log10 scale
``unknown_<field>``        1 where that field (OS version or a spec) was unknown
``brand_<name>``           one-hot over ``BRANDS``, then ``brand_other``; all 0 if unknown
``model_<k>``              one-hot of the model's bucket; all 0 if unknown
=========================  =========================================================

Dynamic windows (``encode_windows``): per client the last 5 trace values at or before the
current time (``Fleet.dynamic_windows``, after the public code's ``extract_last5_windows``),
oldest first, of the bandwidth factor (the rate trace: LiveLab's 802.11 PHY rate over its
54 Mb/s maximum), free-CPU fraction and battery percent; each channel is min-max scaled by
``WINDOW_SCALES`` and clipped, then flattened to 15 numbers ordered window by window. The
ranges are those of the LiveLab (Shepard et al., SIGMETRICS PER 2011) and Carat (Oliner et al.,
SenSys 2013) traces the public code normalises by (rate 1-54, i.e. factor 1/54-1; CPU 35-100 %;
battery -1-99; ``docs/bliss.md``), so a factor maps exactly as its ``(rate - 1) / 53`` does.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from fedscale.selection.base import STATIC_COLUMNS

BRANDS: tuple[str, ...] = ("Samsung", "Apple", "Huawei", "Xiaomi", "Oppo", "Vivo", "Motorola", "LG", "HTC",
                           "Sony", "Asus", "Lenovo", "Google", "OnePlus", "ZTE", "Nokia", "Alcatel")
BRAND_ALIASES: dict[str, str] = {"lge": "LG", "asustek": "Asus", "tcl": "Alcatel", "redmi": "Xiaomi",
                                 "poco": "Xiaomi", "iphone": "Apple", "moto": "Motorola"}
MODEL_BUCKETS = 16


class Scale(NamedTuple):
    """A numeric spec's range (values outside are clipped), scale, and the value assumed when unknown."""

    low: float
    high: float
    log: bool
    typical: float


NUMERIC_SCALES: dict[str, Scale] = {
    "ram_gb": Scale(0.25, 16.0, False, 2.0),
    "storage_gb": Scale(0.5, 512.0, False, 16.0),
    "battery_mah": Scale(1_000.0, 10_000.0, False, 2_800.0),
    "cpu_flops": Scale(1e9, 1e11, True, 2.56e10),
    "gpu_flops": Scale(1e7, 1e12, True, 3.25e9),
    "peak_throughput_mbps": Scale(11.0, 2_402.0, False, 150.0),
}
OS_YEAR_SCALE = Scale(2008.0, 2026.0, False, 2015.5)
ANDROID_YEARS: tuple[tuple[int, int, float], ...] = (
    (1, 0, 2008.8), (1, 5, 2009.3), (1, 6, 2009.7), (2, 0, 2009.8), (2, 2, 2010.4), (2, 3, 2010.9),
    (3, 0, 2011.1), (4, 0, 2011.8), (4, 1, 2012.5), (4, 2, 2012.9), (4, 3, 2013.6), (4, 4, 2013.8),
    (5, 0, 2014.9), (5, 1, 2015.2), (6, 0, 2015.8), (7, 0, 2016.6), (7, 1, 2016.8), (8, 0, 2017.6),
    (8, 1, 2017.9), (9, 0, 2018.6), (10, 0, 2019.7), (11, 0, 2020.7), (12, 0, 2021.8), (13, 0, 2022.6),
    (14, 0, 2023.8), (15, 0, 2024.8), (16, 0, 2025.4))
IOS_YEARS: tuple[tuple[int, int, float], ...] = ((1, 0, 2007.5), (18, 0, 2024.7), (26, 0, 2025.7))
ANDROID_CODE_NAMES: dict[str, tuple[int, int]] = {
    "cupcake": (1, 5), "donut": (1, 6), "eclair": (2, 0), "froyo": (2, 2), "gingerbread": (2, 3),
    "honeycomb": (3, 0), "ice cream sandwich": (4, 0), "jelly bean": (4, 1), "kitkat": (4, 4),
    "lollipop": (5, 0), "marshmallow": (6, 0), "nougat": (7, 0), "oreo": (8, 0), "pie": (9, 0)}
MAX_OS_MAJOR = 30

NUM_WINDOWS = 5
WINDOW_SCALES: dict[str, Scale] = {
    "rate": Scale(1.0 / 54.0, 1.0, False, 1.0),
    "cpu": Scale(0.35, 1.0, False, 1.0),
    "battery": Scale(-1.0, 99.0, False, -1.0),
}
WINDOW_CHANNELS = tuple(WINDOW_SCALES)

_DENSE = ("os_modernity", "os_ios", *NUMERIC_SCALES, "unknown_os_version",
          *(f"unknown_{name}" for name in NUMERIC_SCALES))
STATIC_FEATURES: tuple[str, ...] = (*_DENSE, *(f"brand_{name.lower()}" for name in BRANDS), "brand_other",
                                    *(f"model_{k}" for k in range(MODEL_BUCKETS)))
STATIC_DIM = len(STATIC_FEATURES)
DENSE_DIM = len(_DENSE)
WINDOW_FEATURES: tuple[str, ...] = tuple(f"{channel}_{k}" for k in range(NUM_WINDOWS) for channel in WINDOW_CHANNELS)
WINDOW_DIM = len(WINDOW_FEATURES)

_BRAND_SLOT = {name.casefold(): slot for slot, name in enumerate(BRANDS)}
_BRAND_SLOT.update({alias: _BRAND_SLOT[name.casefold()] for alias, name in BRAND_ALIASES.items()})
_OTHER_BRAND = len(BRANDS)
_IOS = re.compile(r"\b(?:ios|iphone|ipados)")
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?")
_FIRST_WORD = re.compile(r"[a-z0-9]+")
_YEAR_TABLES = {ios: (np.array([major + minor / 100.0 for major, minor, _ in table]),
                      np.array([year for _, _, year in table]))
                for ios, table in ((False, ANDROID_YEARS), (True, IOS_YEARS))}


class CompactStatic(NamedTuple):
    """Static features before the one-hots are spelled out: ``DENSE_DIM`` floats and two small ints per client.

    ``dense`` holds the first ``DENSE_DIM`` columns of the layout; ``brand`` is the brand's
    slot (``len(BRANDS)`` for other, -1 unknown) and ``model`` the model's bucket (-1 unknown).
    Bliss keeps this form for the whole fleet and spells out only the rows it feeds a regressor.
    """

    dense: np.ndarray
    brand: np.ndarray
    model: np.ndarray


def encode_static(columns: Mapping[str, Any], num_clients: int | None = None) -> np.ndarray:
    """``[n, STATIC_DIM]`` float32 features of n clients from their metadata columns.

    ``columns`` maps names of ``STATIC_COLUMNS`` to arrays aligned by client: labels (str; ""
    or None unknown) for brand, model and os_version, numbers (NaN unknown) for the specs. A
    label column may also be a ``Categorical``-like object with ``codes`` (-1 unknown) into a
    ``vocab``. Any column may be missing; ``num_clients`` is needed only when none is given.
    Other keys are ignored.
    """
    return expand_static(compact_static(columns, num_clients))


def compact_static(columns: Mapping[str, Any], num_clients: int | None = None) -> CompactStatic:
    """The ``CompactStatic`` form of ``encode_static``'s result (same arguments)."""
    n = _num_rows(columns, num_clients)
    os_year, os_ios = _label_codes(columns.get("os_version"), n, _os_facts, (np.nan, 0.0)).T
    os_known = np.isfinite(os_year)
    scaled, unknown = [], []
    for name, scale in NUMERIC_SCALES.items():
        values = _numbers(columns.get(name), n, name)
        known = np.isfinite(values)
        scaled.append(_scale(np.where(known, values, scale.typical), scale))
        unknown.append(~known)
    dense = np.column_stack([_scale(np.where(os_known, os_year, OS_YEAR_SCALE.typical), OS_YEAR_SCALE), os_ios,
                             *scaled, ~os_known, *unknown]).astype(np.float32)
    brand = _label_codes(columns.get("brand"), n, _brand_slot, -1).astype(np.int16)
    model = _label_codes(columns.get("model"), n, _model_bucket, -1).astype(np.int16)
    return CompactStatic(dense, brand, model)


def expand_static(compact: CompactStatic) -> np.ndarray:
    """Spell out the one-hots of a ``CompactStatic``: ``[n, STATIC_DIM]`` float32."""
    n, width = compact.dense.shape
    out = np.zeros((n, STATIC_DIM), dtype=np.float32)
    out[:, :width] = compact.dense
    rows = np.arange(n)
    for offset, code in ((width, compact.brand), (width + len(BRANDS) + 1, compact.model)):
        known = code >= 0
        out[rows[known], offset + code[known]] = 1.0
    return out


def encode_windows(windows: np.ndarray) -> np.ndarray:
    """``[n, 15]`` float32 from ``[n, 5, 3]`` windows of (bandwidth factor, free-CPU fraction,
    battery percent), each scaled by ``WINDOW_SCALES`` and clipped to [0, 1]; a NaN reads as
    that channel's ``typical`` value (the fleet's own default when a client has no trace: factor
    1, CPU fully free, battery -1 = unknown as in Carat)."""
    values = np.asarray(windows, dtype=np.float64)
    if values.ndim != 3 or values.shape[1:] != (NUM_WINDOWS, len(WINDOW_CHANNELS)):
        raise ValueError(f"windows must have shape [n, {NUM_WINDOWS}, {len(WINDOW_CHANNELS)}], got {values.shape}")
    out = np.empty(values.shape, dtype=np.float32)
    for k, scale in enumerate(WINDOW_SCALES.values()):
        channel = values[:, :, k]
        out[:, :, k] = _scale(np.where(np.isfinite(channel), channel, scale.typical), scale)
    return out.reshape(len(values), WINDOW_DIM)


def os_release_year(label: str) -> tuple[float, bool]:
    """(release year of the OS version named by ``label``, whether it is iOS); year NaN if unknown.

    Accepts "Android 6.0.1", "6.0", "iOS 12", "iPhone OS 3.1.3", Android code names
    ("KitKat"); a bare number is read as Android (the fleets we model are Android phones).
    Majors outside 1..``MAX_OS_MAJOR`` and strings with no version are unknown.
    """
    text = label.strip().casefold()
    ios = bool(_IOS.search(text))
    match = _VERSION.search(text)
    if match:
        major, minor = int(match.group(1)), min(int(match.group(2) or 0), 99)
    else:
        names = [version for name, version in ANDROID_CODE_NAMES.items()
                 if not ios and re.search(rf"\b{name}\b", text)]
        major, minor = max(names, default=(0, 0))
    if not 1 <= major <= MAX_OS_MAJOR:
        return float("nan"), ios
    versions, years = _YEAR_TABLES[ios]
    return float(np.interp(major + minor / 100.0, versions, years)), ios


def _os_facts(label: str) -> tuple[float, float]:
    year, ios = os_release_year(label)
    return year, float(ios)


def _brand_slot(label: str) -> int:
    """Slot of a brand label: exact or alias match, else its first word's, else "other"."""
    text = label.strip().casefold()
    if text in _BRAND_SLOT:
        return _BRAND_SLOT[text]
    word = _FIRST_WORD.search(text)
    return _BRAND_SLOT.get(word.group(0), _OTHER_BRAND) if word else -1


def _model_bucket(label: str) -> int:
    """Bucket of a model name: CRC-32 of the case-folded, whitespace-collapsed name."""
    text = " ".join(label.casefold().split())
    return zlib.crc32(text.encode("utf-8")) % MODEL_BUCKETS if text else -1


def _label_codes(column: Any, n: int, encode: Callable[[str], Any], unknown: Any) -> np.ndarray:
    """``encode`` applied to each client's label, computed once per distinct label.

    Missing column, None and blank labels give ``unknown``.
    """
    if column is None:
        return np.array([unknown] * n, dtype=np.float64)
    if hasattr(column, "codes") and hasattr(column, "vocab"):
        labels = [str(label) for label in np.asarray(column.vocab)]
        codes = np.asarray(column.codes)
        index = np.where(codes < 0, len(labels), codes)
    else:
        values = np.asarray(column).reshape(-1)
        if values.dtype.kind != "U":
            values = values.astype(object)
            values[np.equal(values, None) | np.not_equal(values, values)] = ""
            values = values.astype(str)
        distinct, index = np.unique(values, return_inverse=True)
        labels = distinct.tolist()
    table = np.array([encode(label) if label.strip() else unknown for label in labels] + [unknown],
                     dtype=np.float64)
    return table[index.reshape(-1)]


def _numbers(column: Any, n: int, name: str) -> np.ndarray:
    """A numeric column as float64 (all NaN when missing); non-finite values read as unknown."""
    if column is None:
        return np.full(n, np.nan)
    try:
        values = np.asarray(column, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ValueError(f"static column {name} must hold numbers (NaN for unknown): {error}") from None
    return np.where(np.isfinite(values), values, np.nan)


def _scale(values: np.ndarray, scale: Scale) -> np.ndarray:
    """Min-max scale to [0, 1] over the scale's range (log10 if ``scale.log``), clipped."""
    low, high = scale.low, scale.high
    clipped = np.clip(values, low, high)
    if scale.log:
        clipped, low, high = np.log10(clipped), np.log10(low), np.log10(high)
    return (clipped - low) / (high - low)


def _num_rows(columns: Mapping[str, Any], num_clients: int | None) -> int:
    """The common length of the given columns (and ``num_clients`` if set); ValueError if they differ."""
    lengths = {name: len(column.codes) if hasattr(column, "codes") else int(np.size(column))
               for name, column in columns.items() if name in STATIC_COLUMNS and column is not None}
    if num_clients is not None:
        lengths["num_clients"] = num_clients
    if not lengths:
        raise ValueError("num_clients is needed when no static column is given")
    if len(set(lengths.values())) > 1:
        raise ValueError(f"static columns differ in length: {lengths}")
    return next(iter(lengths.values()))
