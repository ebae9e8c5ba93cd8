"""benchmark/perf/peers.py's measurements and the plain loop it is a ratio against."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.jobs import ROOT

sys.path.insert(0, str(ROOT / "benchmark" / "perf"))
import peers  # noqa: E402

GOLDEN_LOG = ROOT / "tests" / "golden" / "default" / "aggregator.jsonl"


def test_the_plain_loop_trains_a_runs_rounds_and_reports_each_when_done(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmark" / "perf" / "plain_loop.py"),
                           str(ROOT / "fedscale" / "jobs" / "quickstart.yml"), str(GOLDEN_LOG)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["round"] for line in lines] == list(range(1, 41))
    times = [line["wall_time"] for line in lines]
    assert times == sorted(times)


def test_a_round_is_done_when_its_test_is(tmp_path):
    log = tmp_path / "aggregator.jsonl"
    rows = [("ROUND_END", 1, 5.0), ("TEST_RESULT", 1, 5.5), ("ROUND_BEGIN", 2, 5.6), ("ROUND_END", 2, 6.0)]
    log.write_text("".join(json.dumps({"tag": t, "round": r, "wall_time": w}) + "\n" for t, r, w in rows))
    assert peers.rounds_done(log) == [5.5, 6.0]


def test_figures_leave_the_first_round_out_of_the_median():
    run = peers.measure("x", [10.0, 10.5, 10.6, 10.7, 10.9], started=8.0, peak=1)
    assert run.first_round_seconds == 2.0
    assert run.round_seconds == pytest.approx(0.1)


def test_tree_memory_counts_children():
    own = peers.tree_pss(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; x = b'1' * (200 << 20); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while peers.tree_pss(os.getpid()) < own + (200 << 20):
            assert time.monotonic() < deadline, "the child's memory was not counted"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
