"""A run's summary, read from its aggregator's JSON event log and nothing else.

``summarize`` reduces the run's round rows (``fedscale.cloud.logger.rounds``) to the figures a
comparison ranks on; a pure function of the events, so ``report`` rebuilds exactly what the
sweep wrote.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fedscale.cloud import commons
from fedscale.cloud.logger.rounds import ROUND_COLUMNS, round_rows

# the columns of rounds.csv
CSV_COLUMNS = ROUND_COLUMNS[:10]
# a run's status in a sweep: the job's own end (diverged: the attack broke the model, a result
# rather than a fault), or why it has none
COMPLETED, DIVERGED, ERROR, STOPPED = "completed", "diverged", "error", "stopped"
WALL_BUDGET, NOT_RUN = "wall_budget", "not_run"
_JOB_STATUS = {commons.STATUS_COMPLETED: COMPLETED, commons.STATUS_STOPPED: STOPPED, commons.STATUS_DIVERGED: DIVERGED}


def read_json(path: Path) -> Any:
    """A JSON file of a sweep folder, or None if it is missing or unreadable (a run not yet there)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` by ``data`` as JSON, atomically, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def reached(value: float, metric: str, target: float) -> bool:
    """Whether ``value`` of ``metric`` meets ``target`` (accuracy at least, loss at most)."""
    return value >= target if metric == "test_accuracy" else value <= target


def summarize(events: Sequence[Mapping[str, Any]], target_metric: str | None = None,
              target_value: float | None = None) -> dict[str, Any]:
    """Final and best test accuracy and loss, the mean test loss, the rounds and virtual seconds
    to the target (None if never reached), the job's wall time from its start to its end as its
    log records it, and how the job ended."""
    rows = round_rows(events)
    tested = [r for r in rows if _number(r["test_accuracy"]) is not None]
    accuracies = [r["test_accuracy"] for r in tested]
    losses = [r["test_loss"] for r in tested if _number(r["test_loss"]) is not None]
    to_target = None
    if target_metric and target_value is not None:
        to_target = next((r for r in tested if _number(r[target_metric]) is not None
                          and reached(r[target_metric], target_metric, target_value)), None)
    begin = next((e for e in events if e["tag"] == commons.JOB_BEGIN), None)
    end = next((e for e in reversed(events) if e["tag"] == commons.JOB_END), None)
    status = ERROR if end is None else _JOB_STATUS.get(end.get("status"), ERROR)
    return {
        "status": status,
        "reason": "" if end is None else end.get("reason", ""),
        "rounds": len(rows),
        "virtual_seconds": rows[-1]["virtual_time"] if rows else 0.0,
        "final_accuracy": accuracies[-1] if accuracies else None,
        "best_accuracy": max(accuracies) if accuracies else None,
        "final_loss": losses[-1] if losses else None,
        "best_loss": min(losses) if losses else None,
        "mean_loss": sum(losses) / len(losses) if losses else None,
        "rounds_to_target": to_target["round"] if to_target else None,
        "virtual_seconds_to_target": to_target["virtual_time"] if to_target else None,
        "wall_seconds": (end["wall_time"] - begin["wall_time"]) if begin and end else None,
    }


def write_rounds(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """rounds.csv: the sweep's columns of each round row (``CSV_COLUMNS``)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS} for row in rows)
