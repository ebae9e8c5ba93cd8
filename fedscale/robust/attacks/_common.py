"""Shared argument checks for the attacks (private helper, no attack lives here)."""

from __future__ import annotations

import numbers

import torch


def check_honest(honest: torch.Tensor, *, min_rows: int = 1) -> torch.Tensor:
    """Return ``honest`` after checking it is an h x d floating-point tensor, h >= min_rows."""
    if not isinstance(honest, torch.Tensor):
        raise ValueError(f"honest must be a torch.Tensor, got {type(honest).__name__}")
    if honest.dim() != 2:
        raise ValueError(f"honest must be a 2-D (h x d) tensor, got shape {tuple(honest.shape)}")
    if not honest.is_floating_point():
        raise ValueError(f"honest must be a floating-point tensor, got dtype {honest.dtype}")
    if honest.shape[0] < min_rows:
        raise ValueError(f"honest must contain at least {min_rows} row(s), got {honest.shape[0]}")
    return honest


def check_num_byzantine(num_byzantine) -> int:
    """Check that ``num_byzantine`` is a non-negative integer (bools refused)."""
    if isinstance(num_byzantine, bool) or not isinstance(num_byzantine, numbers.Integral):
        raise ValueError(f"num_byzantine must be an integer, got {num_byzantine!r}")
    if num_byzantine < 0:
        raise ValueError(f"num_byzantine must be >= 0, got {num_byzantine}")
    return int(num_byzantine)


def check_real(name: str, value, *, positive: bool = False, nonnegative: bool = False,
               finite: bool = True) -> float:
    """Check that ``value`` is a real number with the requested sign / finiteness."""
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


def repeat_row(row: torch.Tensor, num_byzantine: int) -> torch.Tensor:
    """Return ``num_byzantine`` copies of the d-vector ``row`` as a num_byzantine x d tensor."""
    return row.reshape(1, -1).expand(num_byzantine, -1).clone()


def reject_unknown(params: dict) -> None:
    """Refuse keyword parameters the attack does not know, naming them."""
    if params:
        raise ValueError(f"unknown parameter(s): {', '.join(sorted(params))}")
