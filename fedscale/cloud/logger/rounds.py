"""A run's rounds as rows, read from its aggregator's event log: the table a notebook, the sweep
and the plots start from.

``round_rows`` joins each round's ROUND_BEGIN, ROUND_END and TEST_RESULT (if the round was
tested) into one row; ``read_rounds`` does it for a run folder, as a pandas DataFrame when
pandas is installed.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fedscale.cloud import commons
from fedscale.cloud.logger.events import read_events

# the columns of a round row, in order; the test columns are None on untested rounds
ROUND_COLUMNS = ("round", "virtual_time", "clients", "aggregated", "byzantine_aggregated", "train_loss",
                 "test_loss", "test_accuracy", "round_duration", "wall_seconds", "stragglers", "offline", "failed")


def aggregator_log(run_dir: Path) -> Path | None:
    """The aggregator's event log of a run folder, or of the newest job folder under a sweep
    run's folder (``logs/<job>/<time_stamp>/``); None if there is none."""
    run_dir = Path(run_dir)
    if (run_dir / commons.AGGREGATOR_LOG).is_file():
        return run_dir / commons.AGGREGATOR_LOG
    logs = sorted(run_dir.glob(f"logs/*/*/{commons.AGGREGATOR_LOG}"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def aggregator_events(run_dir: Path) -> list[dict[str, Any]]:
    """The aggregator's events of ``run_dir`` (none if it has no log yet)."""
    log = aggregator_log(run_dir)
    return list(read_events(log)) if log is not None else []


def round_rows(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per finished round (``ROUND_COLUMNS``): ``virtual_time`` at the round's end,
    ``clients`` planned, then how many were aggregated, Byzantine, left out as stragglers,
    offline and failed (offline ones included), the losses and the durations."""
    rows: dict[int, dict[str, Any]] = {}
    tests: dict[int, Mapping[str, Any]] = {}
    planned: dict[int, int] = {}
    for event in events:
        tag, r = event["tag"], event.get("round")
        if tag == commons.ROUND_BEGIN:
            planned[r] = len(event.get("clients", []))
        elif tag == commons.ROUND_END:
            rows[r] = {"round": r, "virtual_time": event["virtual_time"], "clients": planned.get(r),
                       "aggregated": event.get("aggregated"), "byzantine_aggregated": event.get("byzantine_aggregated", 0),
                       "train_loss": event.get("train_loss"), "test_loss": None, "test_accuracy": None,
                       "round_duration": event.get("round_duration"), "wall_seconds": event.get("wall_seconds"),
                       "stragglers": len(event.get("stragglers", [])), "offline": len(event.get("offline", [])),
                       "failed": len(event.get("failures", []))}
        elif tag == commons.TEST_RESULT:
            tests[r] = event
    for r, test in tests.items():
        if r in rows:
            rows[r]["test_loss"], rows[r]["test_accuracy"] = test.get("loss"), test.get("accuracy")
    return [rows[r] for r in sorted(rows)]


def read_rounds(run_dir: str | Path) -> Any:
    """The rounds of a run folder as rows: a pandas DataFrame when pandas is installed, else a
    list of dicts (``ROUND_COLUMNS``)."""
    rows = round_rows(aggregator_events(Path(run_dir)))
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows, columns=list(ROUND_COLUMNS))
