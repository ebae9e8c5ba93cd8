"""benchmark/perf/pfl_runner.py's output contract, read by benchmark/perf/peers.py: one JSON line
per finished round on stdout and nothing else; exit status 3 when pfl cannot be imported.
The run needs pfl (``pip install --no-deps -r tests/peers-requirements.txt``) and skips without it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "benchmark" / "perf" / "pfl_runner.py"
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def test_three_rounds_print_three_json_lines() -> None:
    pytest.importorskip("pfl")
    done = subprocess.run([sys.executable, str(RUNNER), "--rounds", "3"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["round"] for line in lines] == [1, 2, 3]
    for line in lines:
        assert set(line) == {"round", "wall_time", "accuracy"}
        assert isinstance(line["wall_time"], float) and 0.0 <= line["accuracy"] <= 1.0
    times = [line["wall_time"] for line in lines]
    assert times == sorted(times)


def test_missing_pfl_exits_3_with_one_line() -> None:
    hide_pfl = ("import runpy, sys; sys.modules['pfl'] = None; sys.argv = [sys.argv[1], '--rounds', '1']; "
                "runpy.run_path(sys.argv[0], run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", hide_pfl, str(RUNNER)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr == "pfl is not installed (pip install --no-deps -r tests/peers-requirements.txt)\n"
