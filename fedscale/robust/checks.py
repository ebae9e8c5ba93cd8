"""Argument checks shared by every robust method: aggregators, pre-aggregators and attacks.

Each raises ``ValueError`` with one line naming the argument (and the method, when given).
``check_aggregation``, ``check_preaggregation`` and ``check_attack`` are the checks each kind
of method runs on its common arguments before its own.
"""
from __future__ import annotations

import numbers

import torch


def _prefix(method: str) -> str:
    return f"{method}: " if method else ""


def check_stack(x: torch.Tensor, what: str = "updates", *, method: str = "", min_rows: int = 1) -> torch.Tensor:
    """Return ``x`` after checking it is a 2-D floating-point tensor with at least ``min_rows`` rows."""
    p = _prefix(method)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{p}{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{p}{what} must be a 2-D (rows x d) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{p}{what} must be floating point, got dtype {x.dtype}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{p}{what} must contain at least {min_rows} row(s), got {x.shape[0]}")
    return x


def check_int(name: str, value, *, low: int, high: int | None = None, method: str = "") -> int:
    """Check ``low <= value`` (and ``value <= high`` if given) for an integer (bools refused)."""
    p = _prefix(method)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{p}{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{p}{name} must be {bound}, got {value}")
    return value


def check_real(name: str, value, *, positive: bool = False, nonnegative: bool = False,
               finite: bool = True) -> float:
    """Check that ``value`` is a real number (not NaN) with the requested sign and finiteness."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if value != value:
        raise ValueError(f"{name} must not be NaN")
    if finite and value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and not value > 0.0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and not value >= 0.0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def reject_unknown(params: dict, method: str = "") -> None:
    """Refuse keyword parameters the method does not know, naming them."""
    if params:
        raise ValueError(f"{_prefix(method)}unknown parameter(s): {', '.join(sorted(params))}")


def reject_weights(weights, method: str) -> None:
    """Refuse per-client weights in an aggregator that does not support them."""
    if weights is not None:
        raise ValueError(f"{method}: per-client weights are not supported by this aggregator")


def check_aggregation(method: str, updates: torch.Tensor, f, *, weights=None, params: dict | None = None,
                      majority: bool = True) -> tuple[int, int]:
    """Check an aggregator's common arguments and return (n, d) of ``updates``.

    ``updates`` must be an n x d floating-point stack with n >= 1 and ``f`` a non-negative
    integer; ``weights`` (given by the aggregators that do not support them) must be None and
    ``params`` empty; with ``majority``, the honest updates must be a majority: n > 2f.
    """
    check_stack(updates, method=method)
    check_int("f", f, low=0, method=method)
    reject_weights(weights, method)
    reject_unknown(params or {}, method)
    n, d = updates.shape
    if majority and not 2 * f < n:
        raise ValueError(f"{method}: needs n > 2f, got n={n}, f={f}")
    return n, d


def check_preaggregation(updates: torch.Tensor, f, params: dict) -> tuple[torch.Tensor, int]:
    """Check a pre-aggregator's common arguments: no unknown ``params``, ``updates`` an n x d
    floating-point stack with n >= 1, and 0 <= f < n; return ``updates`` and ``f`` as an int."""
    reject_unknown(params)
    updates = check_stack(updates)
    return updates, check_int("f", f, low=0, high=updates.shape[0] - 1)


def check_attack(honest: torch.Tensor, num_byzantine, params: dict, *, min_rows: int = 1) -> tuple[torch.Tensor, int]:
    """Check an attack's common arguments: no unknown ``params``, ``honest`` an h x d
    floating-point stack with h >= ``min_rows``, and num_byzantine >= 0; return ``honest`` and
    ``num_byzantine`` as an int."""
    reject_unknown(params)
    honest = check_stack(honest, "honest", min_rows=min_rows)
    return honest, check_int("num_byzantine", num_byzantine, low=0)
