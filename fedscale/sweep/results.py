"""A run's rounds and summary, read from its aggregator's JSON event log and nothing else.

``rounds`` joins each round's ROUND_END with the TEST_RESULT of that round (if it was tested)
into one row; ``summarize`` reduces the rows to the figures a comparison ranks on. Both are
pure functions of the events, so ``report`` rebuilds exactly what the sweep wrote.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fedscale.cloud import commons
from fedscale.cloud.logger.events import read_events

ROUND_COLUMNS = ("round", "virtual_time", "clients", "aggregated", "byzantine_aggregated", "train_loss",
                 "test_loss", "test_accuracy", "round_duration", "wall_seconds")
# a run's status in a sweep: the job's own end (diverged: the attack broke the model, a result
# rather than a fault), or why it has none
COMPLETED, DIVERGED, ERROR, STOPPED = "completed", "diverged", "error", "stopped"
WALL_BUDGET, NOT_RUN = "wall_budget", "not_run"
_JOB_STATUS = {commons.STATUS_COMPLETED: COMPLETED, commons.STATUS_STOPPED: STOPPED, commons.STATUS_DIVERGED: DIVERGED}


def aggregator_log(run_dir: Path) -> Path | None:
    """The aggregator event log under a run's folder (its newest job folder), if any."""
    logs = sorted(run_dir.glob(f"logs/*/*/{commons.AGGREGATOR_LOG}"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def load_events(run_dir: Path) -> list[dict[str, Any]]:
    log = aggregator_log(run_dir)
    return list(read_events(log)) if log is not None else []


def rounds(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per finished round (``ROUND_COLUMNS``); test columns are None on untested rounds.
    ``virtual_time`` is the time at the round's end."""
    rows: dict[int, dict[str, Any]] = {}
    tests: dict[int, Mapping[str, Any]] = {}
    begun: dict[int, int] = {}
    for event in events:
        tag, r = event["tag"], event.get("round")
        if tag == commons.ROUND_BEGIN:
            begun[r] = len(event.get("clients", []))
        elif tag == commons.ROUND_END:
            rows[r] = {"round": r, "virtual_time": event["virtual_time"], "clients": begun.get(r),
                       "aggregated": event.get("aggregated"), "byzantine_aggregated": event.get("byzantine_aggregated", 0),
                       "train_loss": event.get("train_loss"), "test_loss": None, "test_accuracy": None,
                       "round_duration": event.get("round_duration"), "wall_seconds": event.get("wall_seconds")}
        elif tag == commons.TEST_RESULT:
            tests[r] = event
    for r, test in tests.items():
        if r in rows:
            rows[r]["test_loss"], rows[r]["test_accuracy"] = test.get("loss"), test.get("accuracy")
    return [rows[r] for r in sorted(rows)]


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
    rows = rounds(events)
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
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ROUND_COLUMNS)
        writer.writeheader()
        writer.writerows({k: ("" if row[k] is None else row[k]) for k in ROUND_COLUMNS} for row in rows)
