"""A job's event log (``events``), read back as rounds (``rounds``) and drawn (``plots``).

``read_events(run_dir)`` gives a run's rounds as rows, one per round with ``ROUND_COLUMNS``
(a pandas DataFrame when pandas is installed, else a list of dicts): what the sweep, the plots
and a notebook read. Both are loaded on first use, so that writing events stays a light import.
"""
from typing import Any

__all__ = ["ROUND_COLUMNS", "read_events"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from fedscale.cloud.logger import rounds
    return rounds.read_rounds if name == "read_events" else rounds.ROUND_COLUMNS
