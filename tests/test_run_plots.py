"""A run's rounds as rows and its plots, from its event log alone."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

from fedscale.cloud import commons
from fedscale.cloud.logger import ROUND_COLUMNS, read_events
from tests.golden import HERE
from tests.jobs import DRIVER


def test_rounds_as_rows_join_plan_outcome_and_test(tmp_path):
    shutil.copy(HERE / "byzantine" / commons.AGGREGATOR_LOG, tmp_path)
    rows = read_events(tmp_path)
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    events = [json.loads(line) for line in (tmp_path / commons.AGGREGATOR_LOG).read_text().splitlines()]
    ends = [e for e in events if e["tag"] == commons.ROUND_END]
    tests = {e["round"]: e for e in events if e["tag"] == commons.TEST_RESULT}
    assert [r["round"] for r in rows] == [e["round"] for e in ends] and set(rows[0]) == set(ROUND_COLUMNS)
    for row, end in zip(rows, ends):
        assert row["aggregated"] == end["aggregated"] and row["virtual_time"] == end["virtual_time"]
        assert row["byzantine_aggregated"] == end["byzantine_aggregated"]
        assert row["stragglers"] == len(end["stragglers"]) and row["failed"] == len(end["failures"])
        test = tests.get(row["round"])
        assert row["test_accuracy"] == (test["accuracy"] if test else None)


def test_plot_writes_the_runs_pngs_and_refuses_a_folder_without_a_log(tmp_path):
    shutil.copy(HERE / "default" / commons.AGGREGATOR_LOG, tmp_path)
    done = subprocess.run([sys.executable, str(DRIVER), "plot", str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    for name in ("progress.png", "clients.png", "round_durations.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG") and str(tmp_path / name) in done.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = subprocess.run([sys.executable, str(DRIVER), "plot", str(empty)], capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and refused.stderr.strip() == f"error: {empty}: not a run folder (no aggregator.jsonl)"
