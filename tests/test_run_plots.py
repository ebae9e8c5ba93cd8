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


def test_the_plots_draw_the_logs_numbers(tmp_path, monkeypatch):
    from fedscale.cloud.logger import plots
    shutil.copy(HERE / "default" / commons.AGGREGATOR_LOG, tmp_path)
    drawn = {}
    save = plots.save_figure

    def keep(fig, path):
        drawn[path.name] = fig.axes
        return save(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    plots.write_run_plots(tmp_path)
    events = [json.loads(line) for line in (tmp_path / commons.AGGREGATOR_LOG).read_text().splitlines()]
    tests = [e for e in events if e["tag"] == commons.TEST_RESULT]
    ends = [e for e in events if e["tag"] == commons.ROUND_END]
    by_round, by_time = [t["round"] for t in tests], [t["virtual_time"] for t in tests]
    expected = [(by_round, "accuracy"), (by_time, "accuracy"), (by_round, "loss"), (by_time, "loss")]
    for ax, (x, y) in zip(drawn["progress.png"], expected):
        line, = ax.get_lines()
        assert list(line.get_xdata()) == x and list(line.get_ydata()) == [t[y] for t in tests]
    aggregated = drawn["clients.png"][0].containers[0]
    assert [bar.get_height() for bar in aggregated] == [e["aggregated"] for e in ends]
    counts = [patch.get_height() for patch in drawn["round_durations.png"][0].patches]
    assert sum(counts) == len(ends)
