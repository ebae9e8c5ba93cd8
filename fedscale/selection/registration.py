"""The checks of what a selector is handed: client ids, and at registration the sample counts
and profiled durations that go with them, for the selectors that keep a fleet in arrays
indexed by client id."""
from __future__ import annotations

from typing import Any

import numpy as np


def as_ids(values: Any, name: str) -> np.ndarray:
    """``values`` as a 1-D int64 array of client ids; a ValueError if they are not integers."""
    ids = np.asarray(values)
    if ids.size == 0:
        return np.empty(0, dtype=np.int64)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D array of integer client ids, got {ids.dtype} of shape {ids.shape}")
    return ids.astype(np.int64, copy=False)


def check_registration(ids: np.ndarray, num_samples: np.ndarray, durations: np.ndarray) -> None:
    """Refuse a registration whose ``num_samples`` or ``durations`` do not align with the client
    ``ids`` (as ``as_ids`` returns them), or whose ids are negative: ids index the fleet arrays."""
    if num_samples.shape != ids.shape or durations.shape != ids.shape:
        raise ValueError(f"client_ids, num_samples and durations differ in shape: "
                         f"{ids.shape}, {num_samples.shape}, {durations.shape}")
    if ids.size and ids.min() < 0:
        raise ValueError(f"client ids must be >= 0, got {int(ids.min())}")
