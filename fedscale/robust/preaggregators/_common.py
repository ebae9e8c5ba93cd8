"""Shared argument checks for the pre-aggregators (private helper, no method lives here)."""

from __future__ import annotations

import numbers

import torch


def check_updates(updates: torch.Tensor) -> torch.Tensor:
    """Return ``updates`` after checking it is a non-empty n x d floating-point tensor."""
    if not isinstance(updates, torch.Tensor):
        raise ValueError(f"updates must be a torch.Tensor, got {type(updates).__name__}")
    if updates.dim() != 2:
        raise ValueError(f"updates must be a 2-D (n x d) tensor, got shape {tuple(updates.shape)}")
    if updates.shape[0] < 1:
        raise ValueError("updates must contain at least one row")
    if not updates.is_floating_point():
        raise ValueError(f"updates must be a floating-point tensor, got dtype {updates.dtype}")
    return updates


def check_int(name: str, value, *, low: int, high: int | None = None) -> int:
    """Check ``low <= value`` (and ``value <= high`` if given) for an integer (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be in {bound}, got {value}")
    return value


def check_positive_real(name: str, value) -> float:
    """Check that ``value`` is a finite real number strictly greater than zero."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not (value > 0.0) or value == float("inf"):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def reject_unknown(params: dict) -> None:
    """Refuse keyword parameters the method does not know, naming them."""
    if params:
        raise ValueError(f"unknown parameter(s): {', '.join(sorted(params))}")
