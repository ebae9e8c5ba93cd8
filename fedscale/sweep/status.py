"""Where a sweep stands, read from its folder alone: each run pending, running (with its last
round, virtual time and accuracy) or ended (with its status), so any process can follow a sweep
another one is running."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fedscale.cloud import commons
from fedscale.cloud.logger.events import read_events
from fedscale.cloud.logger.rounds import aggregator_log
from fedscale.sweep.results import read_json


def run_progress(folder: Path) -> dict[str, Any]:
    """One run's state: ``pending`` (no folder yet), ``running``, or its final status."""
    progress: dict[str, Any] = {"run_id": folder.name, "status": "pending", "round": 0, "virtual_time": 0.0,
                                "accuracy": None, "reason": ""}
    if not folder.exists():
        return progress
    log = aggregator_log(folder)
    if log is not None:
        for event in read_events(log):
            if event["tag"] == commons.ROUND_END:
                progress["round"], progress["virtual_time"] = event["round"], event["virtual_time"]
            elif event["tag"] == commons.TEST_RESULT:
                progress["accuracy"] = event.get("accuracy")
    summary = read_json(folder / "summary.json")
    if summary is not None and (folder / "outcome.json").exists():
        progress["status"], progress["reason"] = summary["status"], summary.get("reason", "")
    else:
        progress["status"] = "running"
    return progress


def sweep_progress(out: Path) -> dict[str, Any]:
    """Every run's progress (in the order of the sweep's manifest) and whether the sweep has
    written its comparison."""
    manifest = read_json(out / "manifest.json")
    if not manifest:
        return {"sweep_dir": str(out), "finished": False, "runs": []}
    runs = [run_progress(out / run["run_id"]) for run in manifest["runs"]]
    finished = (out / "comparison.json").exists() and manifest.get("wall_seconds") is not None
    return {"sweep_dir": str(out), "finished": finished, "runs": runs}
